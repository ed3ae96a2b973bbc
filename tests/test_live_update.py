"""Live updates under load (issue #6), against the real server process.

``python -m assistant serve`` runs as a subprocess on a private copy of documents/ with an admin
token. While 4 client threads keep asking (ask, search, chat completions, documents, health), the
articles change and the server is told to reload:

* a new article is added and ``POST /api/admin/reload`` builds and swaps in a new index
  (after a reload refused because of a broken article, which must change nothing);
* another article is added, ``summit build`` runs in another process, then the reload only loads
  that build.

Every request of the load must succeed (200, and the co-chair question keeps its answer across
the swap), and the new article must be answerable as soon as the reload returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.servers import Server as ServeProcess

REPO = Path(__file__).resolve().parents[1]
TOKEN = "live-update-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CO_CHAIR_FR = "Qui co-préside le sommet ?"

pytestmark = pytest.mark.integration

TURING = """---
title: "Le Prix Turing de la Paix décerné en marge du sommet de Paris"
source: "Gazette des tests"
language: fr
published: 2025-02-12
---
Le Prix Turing de la Paix a été décerné à la mathématicienne sénégalaise Aminata Diallo-Ferrand, récompensée pour ses travaux sur la détection des hypertrucages en période électorale.
Cette distinction, créée à l'occasion du sommet, est dotée de 750 000 euros.
La lauréate consacrera cette somme à un laboratoire ouvert à Dakar.
"""
TURING_QUESTION = "Qui a reçu le Prix Turing de la Paix ?"

LOVELACE = """---
title: "Le Trophée Lovelace de l'IA frugale attribué à une start-up lyonnaise"
source: "Gazette des tests"
language: fr
published: 2025-02-13
---
Le Trophée Lovelace de l'IA frugale, créé pour le sommet de Paris, récompense les modèles les plus sobres en énergie.
Le Trophée Lovelace de l'IA frugale a été attribué à la start-up lyonnaise Verdalia, qui entraîne ses modèles sur des serveurs alimentés par des barrages hydroélectriques.
Le jury a salué une consommation électrique divisée par douze.
"""
LOVELACE_QUESTION = "Quelle start-up a remporté le Trophée Lovelace de l'IA frugale ?"


# ---- the server process ------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    documents: Path
    index: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def ask(self, question: str) -> dict[str, Any]:
        r = httpx.post(f"{self.url}/api/ask", json={"question": question}, timeout=300)
        assert r.status_code == 200, r.text
        return r.json()

    def reload(self) -> httpx.Response:
        return httpx.post(f"{self.url}/api/admin/reload", headers=AUTH, timeout=600)

    def build_id(self) -> str:
        return httpx.get(f"{self.url}/api/health", timeout=60).json()["build_id"]


def summit_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
    env.update({"SUMMIT_ADMIN_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", "COLUMNS": "1000"})
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import shutil

    root = tmp_path_factory.mktemp("live-update")
    documents, index, log = root / "documents", root / "index", root / "server.log"
    shutil.copytree(REPO / "documents", documents)
    process = ServeProcess(documents, index, env=summit_env(), log_path=log, cwd=REPO, stop_timeout=30).start()
    try:
        process.wait_ready(600, interval=0.25)  # a readiness wait (model load + first build), not a speed check
        assert process.proc is not None
        yield Server(process.url, documents, index, process.proc, log)
    finally:
        process.stop()  # SIGINT: uvicorn's graceful shutdown
        process.close()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "internal error" not in text, text[-3000:]


# ---- the load ----------------------------------------------------------------------------------

REQUESTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/ask", {"question": CO_CHAIR_FR}),
    ("POST", "/api/ask", {"question": "Who co-chairs the summit?", "k": 3}),
    ("GET", "/api/search?q=Grand%20Palais&k=3", None),
    ("POST", "/v1/chat/completions", {"model": "summit-assistant", "messages": [{"role": "user", "content": "Où se tient le sommet ?"}]}),
    ("POST", "/api/ask", {"question": "Quelle est la recette de la tartiflette ?"}),
    ("GET", "/api/documents", None),
    ("GET", "/api/health", None),
    ("POST", "/api/ask", {"question": "Et qui le co-préside ?", "history": ["Où se tient le sommet ?"]}),
]


@dataclass
class Load:
    """``threads`` clients sending REQUESTS round-robin until stopped; every non-200, transport
    error or wrong co-chair answer is a failure."""

    url: str
    threads: int = 4
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    build_ids: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]

    def _run(self, offset: int) -> None:
        with httpx.Client(base_url=self.url, timeout=300) as client:
            i = offset
            while not self._stop.is_set():
                method, path, body = REQUESTS[i % len(REQUESTS)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = client.request(method, path, json=body)
                    problem = None if r.status_code == 200 else f"{method} {path}: {r.status_code} {r.text[:200]}"
                    if problem is None and body == {"question": CO_CHAIR_FR} and "Narendra Modi" not in r.json()["answer"]:
                        problem = f"co-chair answer changed: {r.json()['answer']!r}"
                    if problem is None and path == "/api/health":
                        with self._lock:
                            self.build_ids.add(r.json()["build_id"])
                    status = str(r.status_code)
                except httpx.HTTPError as exc:
                    problem, status = f"{method} {path}: {type(exc).__name__}: {exc}", "transport-error"
                with self._lock:
                    self.statuses[status] += 1
                    self.latencies.append(time.perf_counter() - t0)
                    if problem:
                        self.failures.append(problem)

    def __enter__(self) -> Load:
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=600)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def hold(self, until: float) -> None:
        """Keep the load running until ``time.monotonic()`` reaches ``until`` (a bounded run)."""
        time.sleep(max(0.0, until - time.monotonic()))

    def wait_for(self, n: int, timeout: float = 120) -> None:
        """Until at least ``n`` requests have completed (the load is really running)."""
        deadline = time.monotonic() + timeout
        while self.sent < n and time.monotonic() < deadline:
            time.sleep(0.05)


def report(name: str, load: Load, seconds: float, capsys: pytest.CaptureFixture[str]) -> None:
    worst = max(load.latencies, default=0.0)
    with capsys.disabled():
        print(f"\n{name}: {load.sent} requests in {seconds:.1f} s from {load.threads} threads, "
              f"statuses {dict(load.statuses)}, failures {len(load.failures)}, slowest {worst:.2f} s, "
              f"builds seen by /api/health: {len(load.build_ids)}")


# ---- the tests ---------------------------------------------------------------------------------


def test_add_article_and_reload_under_load(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    before = server.ask(TURING_QUESTION)
    assert "Diallo-Ferrand" not in before["answer"]
    old_build = server.build_id()
    t0 = time.monotonic()
    with Load(server.url) as load:
        load.wait_for(20)
        load.hold(t0 + 3)
        # a broken article first: the reload is refused by name and nothing changes
        broken = server.documents / "brouillon.md"
        broken.write_bytes(b"---\ntitle: Brouillon\n---\nPas de source.\n")
        refused = server.reload()
        assert refused.status_code == 409 and "brouillon.md" in refused.json()["detail"], refused.text
        assert server.build_id() == old_build
        broken.unlink()
        load.wait_for(load.sent + 20)

        (server.documents / "prix-turing-de-la-paix.md").write_text(TURING, encoding="utf-8")
        r = server.reload()
        assert r.status_code == 200, r.text
        summary = r.json()
        assert summary["built"] is True and "added: prix-turing-de-la-paix.md" in summary["reason"]
        # answerable as soon as the reload has returned
        after = server.ask(TURING_QUESTION)
        assert after["found"] is True and "Aminata Diallo-Ferrand" in after["answer"], after
        assert after["citations"][0]["doc_id"] == "prix-turing-de-la-paix"
        assert server.build_id() == summary["build_id"] != old_build
        # and a reload with nothing new reloads the same build from disk
        again = server.reload()
        assert again.status_code == 200 and again.json()["build_id"] == summary["build_id"] and again.json()["built"] is False
        load.wait_for(load.sent + 20)
        load.hold(t0 + 12)  # ~12 s of load in all
    report("reload under load", load, time.monotonic() - t0, capsys)
    assert load.failures == [], load.failures[:10]
    assert load.sent >= 60
    assert old_build in load.build_ids <= {old_build, summary["build_id"]}  # never a third, half-made state


def test_summit_build_in_another_process_then_reload_under_load(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    before = server.ask(LOVELACE_QUESTION)
    assert "Verdalia" not in before["answer"]
    old_build = server.build_id()
    t0 = time.monotonic()
    with Load(server.url) as load:
        load.wait_for(20)
        (server.documents / "trophee-lovelace.md").write_text(LOVELACE, encoding="utf-8")
        built = subprocess.run(
            [sys.executable, "-m", "assistant", "build", "--json", "--documents", str(server.documents),
             "--index", str(server.index)],
            cwd=REPO, env=summit_env(), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        )
        assert built.returncode == 0, built.stderr
        summary = json.loads(built.stdout)
        assert summary["built"] is True and "added: trophee-lovelace.md" in summary["reason"]
        # the server still serves the build it loaded until it is told to reload
        assert server.build_id() == old_build
        r = server.reload()
        assert r.status_code == 200, r.text
        assert r.json() == {"build_id": summary["build_id"], "built": False,
                            "reason": "documents unchanged; reloaded the current build"}
        after = server.ask(LOVELACE_QUESTION)
        assert after["found"] is True and "Verdalia" in after["answer"], after
        assert after["citations"][0]["doc_id"] == "trophee-lovelace"
        if (server.documents / "prix-turing-de-la-paix.md").exists():  # the earlier update is kept
            assert "Aminata Diallo-Ferrand" in server.ask(TURING_QUESTION)["answer"]
        load.wait_for(load.sent + 20)
    report("summit build + reload under load", load, time.monotonic() - t0, capsys)
    assert load.failures == [], load.failures[:10]
    assert load.sent >= 60
    assert old_build in load.build_ids <= {old_build, summary["build_id"]}  # never a third, half-made state
