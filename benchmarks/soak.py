"""Soak test: the real server under a long mixed load, watching for 5xx and memory growth.

    python -m benchmarks.soak --seconds 60 --clients 32

Starts ``python -m assistant serve`` on a free 127.0.0.1 port (on a temporary copy of ./index
when there is one, so ./index is never touched) and runs ``--clients`` concurrent HTTP clients
that mix valid requests (questions in French and English, never-seen questions that churn the
caches, search, chat completions streamed or not, documents, health) with invalid ones (empty,
oversized, bad JSON, invalid UTF-8, lone surrogates, bad k, unknown ids, path traversal, wrong
methods and content types). Each client first sends its share of one request of every kind,
whatever the clock says, so even a short run on a slow machine sees every status the table
expects; then kinds are drawn at random by weight. The server's resident memory (VmRSS in /proc/<pid>/status) is
sampled every second.

The server answers at once but finishes loading its SentenceTransformer in the background (about
250 MB, once), so the soak first waits for its memory to settle; then ``--warmup`` seconds of
load fill the caches, then ``--seconds`` of load are measured. The JSON summary on stdout gives
requests, statuses, 5xx, transport errors, unexpected statuses, latency, and the RSS growth from
the mean of the first 10 s to the mean of the last 10 s of the measured period (and, for
reference, from the start of the load). Every request counts for the status checks, warm-up
included.

Exit code 0 when there was no 5xx, no failed request, no unexpected status and the growth stayed
under ``--max-rss-growth-pct`` (10); 1 otherwise; 2 when the server could not start. Needs the
dev extras (httpx).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from assistant import stats
from benchmarks.servers import Server

REPO = Path(__file__).resolve().parents[1]

QUESTIONS = [
    "Qui co-préside le sommet ?",
    "Who co-chairs the summit?",
    "Où se tient le sommet ?",
    "Which tech boss behind ChatGPT is coming?",
    "How much money will the new AI foundation receive?",
    "Combien de chefs d'État sont attendus ?",
    "Quelle est la recette de la tartiflette ?",
    "What will the weather be like in Tokyo tomorrow?",
    "Emmanuel Macron a-t-il invité Elon Musk ?",
    "Quand le sommet aura-t-il lieu ?",
]
WORDS = ("sommet intelligence artificielle Paris Macron Modi fondation milliards invités Grand Palais Chine "
         "Vance Mistral Altman Musk Trump régulation énergie talents éthique données calcul souveraineté "
         "summit leaders budget climate chips open source safety").split()


@dataclass(frozen=True)
class Kind:
    """One kind of request: how to make it, the status it must get, and its weight in the mix."""

    name: str
    weight: int
    expect: tuple[int, ...]


KINDS = [
    # valid
    Kind("ask", 20, (200,)), Kind("ask-fresh", 8, (200,)), Kind("ask-history", 4, (200,)), Kind("search", 8, (200,)),
    Kind("chat", 6, (200,)), Kind("chat-stream", 4, (200,)), Kind("documents", 3, (200,)), Kind("document", 3, (200,)),
    Kind("health", 4, (200,)), Kind("models", 2, (200,)),
    # invalid
    Kind("empty-question", 3, (422,)), Kind("too-long-question", 2, (422,)), Kind("bad-json", 3, (422,)),
    Kind("invalid-utf8", 2, (400,)), Kind("lone-surrogate", 2, (422,)), Kind("bad-k", 3, (422,)),
    Kind("wrong-type", 2, (422,)), Kind("text-plain", 2, (422,)), Kind("oversized", 2, (413,)),
    Kind("unknown-document", 2, (404,)), Kind("traversal", 2, (404,)), Kind("wrong-method", 2, (405,)),
    Kind("unknown-route", 1, (404,)), Kind("chat-no-user", 2, (422,)), Kind("chat-image", 1, (422,)),
]
JSON = {"Content-Type": "application/json"}


def make_request(kind: str, rng: random.Random) -> dict[str, Any]:
    """httpx.request keyword arguments for one request of ``kind``."""
    q = rng.choice(QUESTIONS)
    if kind == "ask":
        return {"method": "POST", "url": "/api/ask", "json": {"question": q, "k": rng.randint(1, 8)}}
    if kind == "ask-fresh":  # never seen before: new embeddings, new stems (cache churn)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
        return {"method": "POST", "url": "/api/ask", "json": {"question": f"{words} {rng.randrange(10**9)} ?"}}
    if kind == "ask-history":
        return {"method": "POST", "url": "/api/ask", "json": {"question": "Et qui le co-préside ?", "history": [q]}}
    if kind == "search":
        return {"method": "GET", "url": "/api/search", "params": {"q": q, "k": rng.randint(1, 10), "mode": rng.choice(["hybrid", "dense", "lexical"])}}
    if kind in ("chat", "chat-stream"):
        return {"method": "POST", "url": "/v1/chat/completions",
                "json": {"model": "summit-assistant", "stream": kind == "chat-stream", "messages": [{"role": "user", "content": q}]}}
    if kind == "documents":
        return {"method": "GET", "url": "/api/documents"}
    if kind == "document":
        return {"method": "GET", "url": "/api/documents/rtl-une-semaine-pour-l-ia"}
    if kind == "health":
        return {"method": "GET", "url": "/api/health"}
    if kind == "models":
        return {"method": "GET", "url": "/v1/models"}
    if kind == "empty-question":
        return {"method": "POST", "url": "/api/ask", "json": {"question": rng.choice(["", "   ", "\x00"])}}
    if kind == "too-long-question":
        return {"method": "POST", "url": "/api/ask", "json": {"question": "x" * rng.randint(1001, 30_000)}}
    if kind == "bad-json":
        return {"method": "POST", "url": "/api/ask", "content": rng.choice([b'{"question": "Qui', b"{'question': 1}", b"[1,"]), "headers": JSON}
    if kind == "invalid-utf8":
        return {"method": "POST", "url": "/api/ask", "content": b'{"question": "Qui \xff\xfe ?"}', "headers": JSON}
    if kind == "lone-surrogate":
        return {"method": "POST", "url": "/api/ask", "content": b'{"question": "Qui \\ud800 ?"}', "headers": JSON}
    if kind == "bad-k":
        return {"method": "POST", "url": "/api/ask", "json": {"question": q, "k": rng.choice([0, -1, 10**9, "5", 5.5, True, None])}}
    if kind == "wrong-type":
        return {"method": "POST", "url": "/api/ask", "json": rng.choice([None, [], 5, {"question": 5}, {"question": q, "history": "x"}])}
    if kind == "text-plain":
        return {"method": "POST", "url": "/api/ask", "content": json.dumps({"question": q}).encode(), "headers": {"Content-Type": "text/plain"}}
    if kind == "oversized":
        body = json.dumps({"question": q, "history": ["x" * 999] * 80}).encode()
        return {"method": "POST", "url": "/api/ask", "content": body, "headers": {**JSON, "Connection": "close"}}
    if kind == "unknown-document":
        return {"method": "GET", "url": f"/api/documents/nope-{rng.randrange(10**6)}"}
    if kind == "traversal":
        return {"method": "GET", "url": rng.choice(["/api/documents/..%2F..%2Fetc%2Fpasswd", "/api/documents/..%252F..%252Fetc%252Fpasswd",
                                                   "/docs-static/..%2F..%2F..%2Fetc%2Fpasswd"])}
    if kind == "wrong-method":
        return rng.choice([{"method": "GET", "url": "/api/ask"}, {"method": "DELETE", "url": "/api/documents"},
                           {"method": "GET", "url": "/v1/chat/completions"}])
    if kind == "unknown-route":
        return {"method": "GET", "url": "/api/nothing-here"}
    if kind == "chat-no-user":
        return {"method": "POST", "url": "/v1/chat/completions", "json": {"messages": [{"role": "system", "content": q}]}}
    if kind == "chat-image":
        return {"method": "POST", "url": "/v1/chat/completions",
                "json": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}]}]}}
    raise ValueError(kind)


# ---- the server --------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def wait_rss_settled(pid: int, *, stable_s: float = 3.0, tolerance: float = 0.01, timeout: float = 120.0,
                     interval: float = 0.25) -> tuple[float, float]:
    """Wait until the VmRSS of ``pid`` stays within ``tolerance`` for ``stable_s`` seconds (the
    background model load has finished); returns (seconds waited, RSS in MiB)."""
    t0 = time.monotonic()
    recent: deque[int] = deque(maxlen=max(2, round(stable_s / interval) + 1))
    while True:
        kib = rss_kib(pid)
        if kib is None:
            raise RuntimeError("the server exited while starting")
        recent.append(kib)
        waited = time.monotonic() - t0
        settled = len(recent) == recent.maxlen and max(recent) - min(recent) <= tolerance * max(recent)
        if settled or waited > timeout:
            return waited, round(kib / 1024, 1)
        time.sleep(interval)


class RssSampler(threading.Thread):
    """VmRSS of ``pid`` every ``interval`` seconds, as (seconds since start, MiB)."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        next_at = self.t0
        while not self._halt.is_set():
            kib = rss_kib(self.pid)
            if kib is not None:
                self.samples.append((round(time.monotonic() - self.t0, 2), round(kib / 1024, 1)))
            next_at += self.interval
            self._halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# ---- the load ----------------------------------------------------------------------------------


@dataclass
class Tally:
    statuses: Counter[str]
    by_kind: dict[str, Counter[str]]
    latencies_ms: list[float]
    unexpected: list[str]
    transport_errors: list[str]


async def run_load(url: str, clients: int, seconds: float, seed: int, progress: bool) -> Tally:
    import httpx

    tally = Tally(Counter(), defaultdict(Counter), [], [], [])
    kinds = list(KINDS)
    weights = [k.weight for k in kinds]
    deadline = time.monotonic() + seconds
    # Pooled connections are dropped after 2 s idle, before uvicorn closes them (timeout_keep_alive,
    # 5 s). With httpx's default of 5 s too, a connection reused just as the server closes it gets
    # a reset (a keep-alive race, about 1 request in 5,000 here; not a server fault).
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def send(kind: Kind, rng: random.Random) -> None:
            spec = make_request(kind.name, rng)
            t0 = time.perf_counter()
            try:
                if kind.name == "chat-stream":
                    async with client.stream(**spec) as r:
                        body = await r.aread()
                    ok_body = body.endswith(b"data: [DONE]\n\n")
                else:
                    r = await client.request(**spec)
                    ok_body = r.headers.get("content-type", "").startswith("application/json")
                status = str(r.status_code)
            except httpx.HTTPError as exc:
                at = seconds - (deadline - time.monotonic())
                tally.transport_errors.append(f"{kind.name} at {at:.1f} s after {(time.perf_counter() - t0) * 1000:.0f} ms: "
                                              f"{type(exc).__name__}: {exc} ({_causes(exc)})"[:300])
                tally.statuses["transport-error"] += 1
                tally.by_kind[kind.name]["transport-error"] += 1
                return
            tally.latencies_ms.append((time.perf_counter() - t0) * 1000)
            tally.statuses[status] += 1
            tally.by_kind[kind.name][status] += 1
            if r.status_code not in kind.expect or not ok_body:
                tally.unexpected.append(f"{kind.name}: {r.status_code} {r.text[:200] if kind.name != 'chat-stream' else ''}"[:300])

        async def worker(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            # Every kind once first, shared out among the workers and sent whatever the clock
            # says: a short or slow run still covers every status the table expects.
            for kind in kinds[n::clients]:
                await send(kind, rng)
            while time.monotonic() < deadline:
                await send(rng.choices(kinds, weights)[0], rng)

        async def ticker() -> None:
            start = time.monotonic()
            while time.monotonic() < deadline:
                await asyncio.sleep(min(10.0, max(0.1, deadline - time.monotonic())))
                done = sum(tally.statuses.values())
                print(f"soak: {time.monotonic() - start:5.1f} s, {done} requests, statuses {dict(tally.statuses)}",
                      file=sys.stderr, flush=True)

        tasks = [asyncio.create_task(worker(i)) for i in range(clients)]
        if progress:
            tasks.append(asyncio.create_task(ticker()))
        await asyncio.gather(*tasks)
    return tally


def _causes(exc: BaseException) -> str:
    """The chain under a transport error (e.g. ReadError <- BrokenResourceError <- ConnectionResetError)."""
    chain, seen = [], set()
    cur: BaseException | None = exc.__cause__ or exc.__context__
    while cur is not None and id(cur) not in seen and len(chain) < 5:
        seen.add(id(cur))
        chain.append(f"{type(cur).__name__}: {cur}" if str(cur) else type(cur).__name__)
        cur = cur.__cause__ or cur.__context__
    return " <- ".join(chain)


# ---- the summary -------------------------------------------------------------------------------


# The nearest order statistic (assistant.stats), 0.0 for no requests: the soak's figures as before.
percentile = partial(stats.percentile, method="nearest", empty=0.0)


def rss_summary(samples: list[tuple[float, float]], seconds: float, window: float = 10.0) -> dict[str, Any]:
    """Mean RSS over the first and the last ``window`` seconds of the load, and the growth."""
    window = min(window, seconds / 2)
    first = [mb for t, mb in samples if t < window]
    last = [mb for t, mb in samples if t >= seconds - window]
    if not first or not last:
        return {"samples": len(samples), "window_s": window, "growth_pct": None}
    first_mean, last_mean = statistics.fmean(first), statistics.fmean(last)
    mbs = [mb for _, mb in samples]
    return {
        "samples": len(samples), "window_s": window,
        "first_window_mean_mb": round(first_mean, 1), "last_window_mean_mb": round(last_mean, 1),
        "growth_pct": round((last_mean - first_mean) / first_mean * 100, 2),
        "min_mb": min(mbs), "max_mb": max(mbs), "start_mb": mbs[0], "end_mb": mbs[-1],
    }


def summarize(tally: Tally, samples: list[tuple[float, float]], args: argparse.Namespace, startup_s: float,
              load_s: float, server_log: str, exit_code: int | None, settle_s: float, idle_mb: float) -> dict[str, Any]:
    requests = sum(tally.statuses.values())
    five_xx = sum(n for s, n in tally.statuses.items() if s.isdigit() and int(s) >= 500)
    measured = [(round(t - args.warmup, 2), mb) for t, mb in samples if t >= args.warmup]
    rss = rss_summary(measured, load_s - args.warmup)
    rss["warmup_s"] = args.warmup
    rss["idle_after_startup_mb"] = idle_mb
    rss["growth_from_start_pct"] = rss_summary(samples, load_s).get("growth_pct")
    rss["series_mb"] = [mb for _, mb in samples]
    growth = rss.get("growth_pct")
    checks = {
        "no_5xx": five_xx == 0,
        "no_transport_errors": not tally.transport_errors,
        "no_unexpected_status": not tally.unexpected,
        "no_traceback_in_server_log": "Traceback" not in server_log,
        f"rss_growth_under_{args.max_rss_growth_pct:g}pct": growth is not None and growth < args.max_rss_growth_pct,
    }
    return {
        "seconds": args.seconds, "warmup_seconds": args.warmup, "clients": args.clients, "seed": args.seed,
        "load_seconds": round(load_s, 2), "server_startup_seconds": round(startup_s, 2),
        "memory_settle_seconds": round(settle_s, 2),
        "requests": requests, "requests_per_second": round(requests / load_s, 1) if load_s else 0.0,
        "server_errors_5xx": five_xx, "transport_errors": len(tally.transport_errors),
        "unexpected_statuses": len(tally.unexpected),
        "statuses": dict(sorted(tally.statuses.items())),
        "valid_requests": sum(sum(c.values()) for k, c in tally.by_kind.items() if _kind(k).expect == (200,)),
        "invalid_requests": sum(sum(c.values()) for k, c in tally.by_kind.items() if _kind(k).expect != (200,)),
        "by_kind": {k: dict(sorted(c.items())) for k, c in sorted(tally.by_kind.items())},
        "latency_ms": {"p50": round(percentile(tally.latencies_ms, 50), 1), "p95": round(percentile(tally.latencies_ms, 95), 1),
                       "p99": round(percentile(tally.latencies_ms, 99), 1), "max": round(max(tally.latencies_ms, default=0.0), 1)},
        "rss": rss,
        "server_log": {"tracebacks": server_log.count("Traceback"), "internal_errors": server_log.count("internal error"),
                       "warnings": [line for line in server_log.splitlines() if line.startswith(("WARNING", "ERROR"))][:10],
                       "exit_code": exit_code},
        "examples": {"unexpected": tally.unexpected[:5], "transport_errors": tally.transport_errors[:5]},
        "checks": checks,
        "ok": all(checks.values()),
    }


def _kind(name: str) -> Kind:
    return next(k for k in KINDS if k.name == name)


def prepare_index(index: Path | None, workdir: Path) -> Path:
    """The index folder to serve: the one given, else a temporary copy of ./index (when it has a
    build) so the soak never writes into ./index; the server rebuilds it if it is stale."""
    if index is not None:
        return index
    target = workdir / "index"
    source = REPO / "index"
    if (source / "current").exists():
        shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(".lock", ".tmp-*", ".current-*"))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Seconds of measured load, after the warm-up [60].")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent clients [32].")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="Seconds of load before the measured --seconds (caches fill up) [5].")
    parser.add_argument("--documents", type=Path, default=REPO / "documents", help="Articles folder [./documents].")
    parser.add_argument("--index", type=Path, default=None, help="Index folder [a temporary copy of ./index].")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the request mix [0].")
    parser.add_argument("--max-rss-growth-pct", type=float, default=10.0, help="Fail above this RSS growth [10].")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="Seconds to wait for the server [600].")
    parser.add_argument("--json-out", type=Path, default=None, help="Also write the summary to this file.")
    parser.add_argument("--quiet", action="store_true", help="No progress lines on stderr.")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.clients < 1 or args.warmup < 0:
        parser.error("--seconds must be positive, --warmup not negative and --clients at least 1")

    with tempfile.TemporaryDirectory(prefix="summit-soak-") as tmp:
        workdir = Path(tmp)
        # the server's own rate limit and body cap, whatever this environment says
        env = {k: v for k, v in os.environ.items() if k not in ("SUMMIT_RATE_LIMIT_PER_MINUTE", "SUMMIT_MAX_BODY_BYTES")}
        server = Server(args.documents.resolve(), prepare_index(args.index, workdir).resolve(), env=env,
                        log_path=workdir / "server.log", cwd=REPO, stop_timeout=30)
        try:
            if not args.quiet:
                print(f"soak: starting the server on {server.url}", file=sys.stderr, flush=True)
            startup = server.start().wait_ready(args.startup_timeout, interval=0.2)
            assert server.proc is not None
            settle_s, idle_mb = wait_rss_settled(server.proc.pid)
            if not args.quiet:
                print(f"soak: memory settled at {idle_mb:.0f} MiB after {settle_s:.1f} s", file=sys.stderr, flush=True)
            if not args.quiet:
                print(f"soak: ready in {startup:.1f} s; {args.clients} clients for {args.warmup:g} s of warm-up "
                      f"+ {args.seconds:g} s", file=sys.stderr, flush=True)
            sampler = RssSampler(server.proc.pid)
            sampler.start()
            t0 = time.monotonic()
            tally = asyncio.run(run_load(server.url, args.clients, args.warmup + args.seconds, args.seed, not args.quiet))
            load_s = time.monotonic() - t0
            sampler.stop()
        except RuntimeError as exc:
            server.stop()
            print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
            return 2
        finally:
            exit_code = server.stop()
            server.close()
        summary = summarize(tally, sampler.samples, args, startup, load_s, server.log_text(), exit_code, settle_s, idle_mb)
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    print(text)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
