"""`summit bench` (issue #5): the pure helpers, the load generators on a toy loopback server, and
one real `summit bench --quick` run that must complete and write JSON with every section.

No test asserts a timing: the numbers depend on the machine; only their presence and shape count.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench
from assistant.errors import InvalidInputError

REPO = Path(__file__).resolve().parents[1]


# ---- stats -------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy(q):
    rng = np.random.default_rng(q)
    for n in (1, 2, 3, 10, 101):
        xs = rng.exponential(5.0, n).tolist()
        assert bench.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))


def test_percentile_edges():
    assert math.isnan(bench.percentile([], 50))
    assert bench.percentile([3.0], 99) == 3.0
    assert bench.percentile([1, 2, 3, 4], 50) == 2.5
    assert bench.percentile([4, 1, 3, 2], 100) == 4  # order does not matter
    with pytest.raises(ValueError):
        bench.percentile([1.0], 101)


def test_latency_summary():
    s = bench.latency_summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["n"] == 5 and s["min"] == 1.0 and s["max"] == 100.0
    assert s["p50"] == 3.0 and s["mean"] == 22.0
    assert s["p50"] <= s["p95"] <= s["p99"] <= s["max"]
    assert bench.latency_summary([]) == {"n": 0}


def test_server_timing_header_is_parsed():
    assert bench.server_timing("wait;dur=0.01, answer;dur=31.25") == {"wait": 0.01, "answer": 31.25}
    assert bench.server_timing('cache;desc="hit", answer;dur=2') == {"answer": 2.0}  # no duration: left out
    assert bench.server_timing(None) == {} and bench.server_timing("answer;dur=x") == {}


def test_rate_and_median():
    assert bench.rate(100, 4.0) == 25.0
    assert bench.rate(5, 0) == 0.0
    assert bench.median([5, 1, 3]) == 3


def test_recall_at_k():
    exact = [[1, 2, 3], [4, 5, 6]]
    assert bench.recall_at_k(exact, exact, 3) == 1.0
    assert bench.recall_at_k([[3, 2, 9], [7, 8, 9]], exact, 3) == pytest.approx((2 / 3 + 0) / 2)
    assert bench.recall_at_k([[1, -1, -1]], [[1, 2, -1]], 3) == 0.5  # -1 = FAISS's "no result"
    assert bench.recall_at_k([[1, 2, 3]], [[3, 2, 1]], 1) == 0.0  # only the top k count
    with pytest.raises(ValueError):
        bench.recall_at_k([[1]], [[1], [2]], 1)


# ---- synthetic corpora -------------------------------------------------------------------------


def test_text_units_and_passages():
    sents = ["Le sommet se tiendra au Grand Palais, à Paris, les 10 et 11 février.", "Court.",
             "Emmanuel Macron a invité Donald Trump; Elon Musk viendra aussi."]
    units = bench.text_units(sents)
    assert sents[0] in units and "Court." not in units  # too short to read as text
    assert "Emmanuel Macron a invité Donald Trump" in units  # a clause
    assert len(units) == len(set(units))
    passages = bench.synthetic_passages(units, 50, random.Random(1))
    assert len(passages) == 50
    assert passages == bench.synthetic_passages(units, 50, random.Random(1))  # seeded
    for p in passages:
        assert sum(u in p for u in units) >= 2
    with pytest.raises(ValueError):
        bench.synthetic_passages([], 1, random.Random(0))


def test_synthetic_vectors():
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((20, 16)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    v = bench.synthetic_vectors(pool, 250, seed=3, block=64)
    assert v.shape == (250, 16) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(v[:20], pool)  # the embedded pool comes first, untouched
    assert np.array_equal(v, bench.synthetic_vectors(pool, 250, seed=3, block=64))
    assert len(np.unique(v.round(5), axis=0)) == 250  # no duplicates
    assert bench.synthetic_vectors(pool, 5).shape == (5, 16)
    with pytest.raises(ValueError):
        bench.synthetic_vectors(np.zeros((0, 4), np.float32), 3)


# ---- parsing ---------------------------------------------------------------------------------


def test_wrk_lua_quotes_any_body():
    bodies = ['{"question": "Qui ?", "history": []}', '{"question": "a ]] b ]=] c", "history": ["x"]}', 'x ]']
    lua = bench.wrk_lua(bodies)
    assert "[[" + bodies[0] + "]]" in lua
    assert "[==[" + bodies[1] + "]==]" in lua  # long brackets that the body cannot close
    assert "[=[x ]]=]" in lua  # nor complete with its own closing bracket
    assert "SUMMIT_WRK" in lua and 'wrk.method = "POST"' in lua


def test_parse_wrk():
    line = ('SUMMIT_WRK {"requests":600,"duration_us":3000000,"bytes":123,"errors":{"connect":0,"read":1,"write":0,'
            '"status":2,"timeout":0},"latency_us":{"p50":4000,"p95":9000,"p99":12000,"max":20000,"mean":4500.5}}')
    r = bench.parse_wrk("Running 3s test\n" + line + "\n")
    assert r["requests"] == 600 and r["rps"] == 200.0 and r["seconds"] == 3.0
    assert r["latency_ms"]["p50"] == 4.0 and r["latency_ms"]["p95"] == 9.0
    assert r["errors"] == {"status": 2, "socket": 1, "total": 3}
    with pytest.raises(ValueError):
        bench.parse_wrk("no summary")


def test_parse_importtime():
    text = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |     _io",
        "import time:      2000 |       5000 |   encodings",
        "import time:      1000 |    4000000 | torch",
        "import time:       500 |       1500 |     torch._C",
        "import time:       300 |     300000 | fastapi",
    ])
    r = bench.parse_importtime(text)
    assert [x["module"] for x in r["top"]] == ["torch", "fastapi"]
    assert r["top"][0]["cumulative_ms"] == 4000.0 and r["total_ms"] == 4300.0


def test_parse_options():
    assert bench.parse_sections("all") == ("inprocess", "http", "startup", "build", "scale")
    assert bench.parse_sections("scale, inprocess") == ("inprocess", "scale")
    with pytest.raises(InvalidInputError):
        bench.parse_sections("inprocess,nope")
    assert bench.parse_sizes("1e6,10000") == (10_000, 1_000_000)
    assert bench.parse_sizes(None) is None
    for bad in ("ten", "5", ""):
        with pytest.raises(InvalidInputError):
            bench.parse_sizes(bad)
    assert bench.parse_loadgen("python") == "python"
    with pytest.raises(InvalidInputError):
        bench.parse_loadgen("ab")


def test_check_targets():
    result = {
        "http": {f"c{c}": {"latency_ms": {"p50": 3.0, "p95": 20.0}, "rps": 600.0, "errors": {"total": 0}} for c in (1, 8, 32)},
        "startup": {"existing_index": {"median_s": 1.5}},
        "scale": {"sizes": [{"n": 1_000_000, "recommended": {"query_ms": {"p95": 2.0}, "recall_at_10": 0.97, "memory_gb": 0.9}}]},
    }
    t = bench.check_targets(result)
    assert t["http_c1_p50_ms"]["met"] is True and t["http_c1_p95_ms"]["met"] is False
    assert t["http_c32_rps"]["met"] is True and t["ready_existing_s"]["met"] is True
    assert t["scale_1m_recall_at_10"]["met"] is True and t["http_errors"] == {"target": "== 0", "measured": 0, "met": True}
    assert bench.check_targets({})["http_c1_p50_ms"]["met"] is None  # not measured


# ---- processes and load generators -------------------------------------------------------------


@pytest.mark.slow  # child processes and a local HTTP server
def test_run_measured_reports_child_peak_memory():
    r = bench.run_measured([sys.executable, "-c", "b = bytearray(60_000_000); print('ok')"])
    assert r["rc"] == 0 and r["stdout"].strip() == "ok"
    assert r["peak_rss_mb"] >= 55 and r["wall_s"] > 0
    assert bench.run_measured([sys.executable, "-c", "import sys; sys.exit(3)"])["rc"] == 3


def test_machine_info():
    m = bench.machine_info()
    assert m["cores"] >= 1 and m["python"] and m["versions"]["numpy"] and m["versions"]["faiss-cpu"]


@pytest.fixture
def toy_server():
    """A tiny keep-alive HTTP/1.1 server on 127.0.0.1: 200 for POSTs, 500 for every 10th one."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    count = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                count[0] += 1
                status = 500 if count[0] % 10 == 0 else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # the load generator hangs up when its time is over; a reset connection is expected
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.slow  # child processes and a local HTTP server
def test_python_load_generator(toy_server):
    r = bench.run_py_load(toy_server, ['{"question": "a"}', '{"question": "b"}'], connections=4, seconds=0.5)
    assert r["tool"] == "python-asyncio" and r["connections"] == 4
    assert r["requests"] > 20 and r["rps"] > 0
    assert r["errors"]["status"] == pytest.approx(r["requests"] / 10, abs=5)  # every 10th answer is a 500
    assert r["errors"]["socket"] == 0
    assert r["latency_ms"]["p50"] <= r["latency_ms"]["p95"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
@pytest.mark.slow  # child processes and a local HTTP server
def test_wrk_load_generator(toy_server):
    r = bench.run_wrk(toy_server, ['{"question": "a"}', '{"question": "b ]] c"}'], connections=2, seconds=1)
    assert r["tool"] == "wrk -t1" and r["requests"] > 20
    assert r["errors"]["status"] == pytest.approx(r["requests"] / 10, abs=5)


# ---- the real thing --------------------------------------------------------------------------


@pytest.mark.integration
def test_summit_bench_quick_writes_every_section(tmp_path):
    """`summit bench --quick --json OUT` completes and writes valid JSON with every section (no
    timing is asserted: only that each figure was measured)."""
    out = tmp_path / "bench.json"
    env = {**os.environ, "SUMMIT_RATE_LIMIT_PER_MINUTE": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "bench", "--quick", "--json", str(out), "--corpus", "",
         "--questions", str(REPO / "eval" / "corpus" / "questions" / "seed-gold.jsonl"),
         "--documents", str(REPO / "documents"), "--index", str(tmp_path / "index")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["schema"] == bench.SCHEMA
    for section in bench.SECTIONS:
        assert section in result, section
    assert result["machine"]["cores"] >= 1 and result["machine"]["python"]
    ip = result["inprocess"]
    assert ip["latency_ms"]["n"] == ip["questions"] * ip["repeats"] and ip["follow_ups"] > 0
    for level in ("c1", "c8", "c32"):
        r = result["http"][level]
        assert r["requests"] > 0 and r["errors"]["total"] == 0, (level, r)
        assert r["latency_ms"]["p50"] > 0
    assert result["startup"]["no_index"]["ready_s"] > 0 and result["startup"]["existing_index"]["median_s"] > 0
    assert result["startup"]["importtime"]["top"]
    cli = result["startup"]["cli_ask"]  # a cold `summit ask` on the index the servers used
    assert len(cli["runs_s"]) >= 3 and cli["median_s"] > 0 and cli["first_run_s"] > 0 and cli["no_table_cache_s"] > 0
    assert "cli_ask_cold_s" in result["targets"]
    assert result["build"]["seed_corpus"]["chunks"] > 0 and result["build"]["seed_corpus"]["peak_rss_mb"] > 0
    sizes = result["scale"]["sizes"]
    assert [s["n"] for s in sizes] == sorted(result["config"]["scale_sizes"])
    for s in sizes:
        assert s["flat"]["recall_at_10"] == 1.0 and 0 <= s["hnsw"]["recall_at_10"] <= 1
        assert s["hnsw"]["query_ms"]["n"] > 0 and s["hnsw"]["sweep"]
    assert set(result["targets"]) >= {"http_c1_p50_ms", "http_c32_rps", "ready_existing_s", "http_errors", "first_time_p50_ms"}
    assert result["http"]["first_time"]["latency_ms"]["n"] == result["http"]["first_time"]["questions"] > 0
    assert result["http"]["repeated"]["latency_ms"]["n"] > 0
    stages = result["inprocess"]["stages_ms"]
    assert "error" not in stages, stages
    assert {"retrieval", "scoring", "spans", "total"} <= set(stages) and any(k.startswith("encode_") for k in stages)
    # e5's sparse pass, timed on its own (not inside retrieval), or with its dense pass when fused
    latent = stages.get("e5_with_latent_terms") or stages["latent_terms"]
    assert latent["p50"] > 0
    assert "summit bench" in done.stdout  # the table was printed
