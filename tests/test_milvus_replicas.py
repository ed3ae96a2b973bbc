"""Stateless replicas: two real `summit serve` processes (the bundled models) on one Milvus (a
milvus-lite server process) answer identically, and keep answering under load while a full
rebuild (new collections, alias switched) and then an update of one changed article run in a
third process: 0 failed requests, and both replicas switch to each new build by themselves."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from .milvus_fakes import LiteServer, free_port, wait_for  # noqa: E402

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    ("Qui co-préside le sommet ?", []),
    ("Who co-chairs the summit?", []),
    ("Quand a lieu le sommet ?", []),
    ("Quel est le montant des investissements annoncés ?", []),
    ("Et qui d'autre est invité ?", ["Qui co-préside le sommet ?"]),
    ("What will Elon Musk do at the summit?", []),
]


def env_for(tmp: Path, uri: str) -> dict:
    return {**os.environ, "SUMMIT_STORE": "milvus", "SUMMIT_MILVUS_URI": uri, "SUMMIT_DOCUMENTS_DIR": str(tmp / "docs"),
            "SUMMIT_INDEX_DIR": str(tmp / "faiss"), "SUMMIT_MILVUS_POLL_SECONDS": "0.5", "SUMMIT_ANSWER_CACHE_SIZE": "0",
            "PYTHONUNBUFFERED": "1"}


class Replica:
    def __init__(self, tmp: Path, uri: str, name: str):
        self.port = free_port()
        self.log = open(tmp / f"{name}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", str(self.port)], cwd=str(REPO),
                                     env=env_for(tmp, uri), stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path: str, timeout: float = 30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            conn.close()

    def health(self):
        try:
            status, body = self.get("/api/health", timeout=5)
        except OSError:
            return None
        return body if status == 200 else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def ask(conn: http.client.HTTPConnection, question: str, history: list[str]) -> tuple[int, dict]:
    conn.request("POST", "/api/ask", body=json.dumps({"question": question, "history": history}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"null")


def comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "took_ms"}


class Load:
    """Threads asking the questions round-robin on every replica, recording every outcome."""

    def __init__(self, replicas: list[Replica], threads_per_replica: int = 2):
        self.replicas = replicas
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.builds: dict[int, set[str]] = {r.port: set() for r in replicas}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(r, i), daemon=True)
                        for r in replicas for i in range(threads_per_replica)]

    def run(self, replica: Replica, offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=60)
        i = offset
        while not self.stop.is_set():
            q, h = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            try:
                status, body = ask(conn, q, h)
            except Exception as exc:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(f"{replica.port}: {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=60)
                continue
            with self.lock:
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{replica.port}: {status} {body}")
            if i % 5 == 0:
                health = replica.health()
                if health:
                    with self.lock:
                        self.builds[replica.port].add(health["build_id"])
        conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def run_build(tmp: Path, uri: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "assistant", "build", "--json", *args], cwd=str(REPO), env=env_for(tmp, uri),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_two_replicas_answer_identically_and_survive_rebuilds(tmp_path):
    shutil.copytree(REPO / "documents", tmp_path / "docs")
    server = LiteServer(tmp_path / "milvus-data").start()
    replicas: list[Replica] = []
    try:
        first = run_build(tmp_path, server.uri)
        assert first["built"] and first["store"] == "milvus" and first["mode"] == "full"
        replicas = [Replica(tmp_path, server.uri, "a"), Replica(tmp_path, server.uri, "b")]
        for r in replicas:
            assert wait_for(r.health, timeout=300, interval=0.5)["build_id"] == first["build_id"]
        # identical answers, whichever replica answers
        conns = [http.client.HTTPConnection("127.0.0.1", r.port, timeout=60) for r in replicas]
        before = []
        for q, h in QUESTIONS:
            (sa, a), (sb, b) = (ask(c, q, h) for c in conns)
            assert sa == sb == 200
            assert comparable(a) == comparable(b), q
            before.append(comparable(a))
        with Load(replicas) as load:
            time.sleep(2)
            full = run_build(tmp_path, server.uri, "--force")  # new generation, alias switched
            assert full["mode"] == "full" and full["reused_documents"] == 2 and full["embedded_texts"] == 0
            for r in replicas:
                wait_for(lambda r=r: (r.health() or {}).get("build_id") == full["build_id"], timeout=120)
            # the same articles in new collections: the same answers
            conns = [http.client.HTTPConnection("127.0.0.1", r.port, timeout=60) for r in replicas]
            for (q, h), old in zip(QUESTIONS, before):
                for c in conns:
                    status, got = ask(c, q, h)
                    assert status == 200 and comparable(got) == old, q
            time.sleep(2)
            doc = next((tmp_path / "docs").glob("*.md"))
            doc.write_text(doc.read_text(encoding="utf-8") + "\nLe sommet se termine par une déclaration commune.\n",
                           encoding="utf-8")
            update = run_build(tmp_path, server.uri)  # only the changed article
            assert update["mode"] == "update" and update["changed"] and not update["added"] and not update["removed"]
            for r in replicas:
                wait_for(lambda r=r: (r.health() or {}).get("build_id") == update["build_id"], timeout=120)
            time.sleep(2)
        assert load.failures == [], load.failures[:5]
        assert load.ok > 20
        for r in replicas:
            assert update["build_id"] in load.builds[r.port]
        # after the switches the replicas still agree
        conns = [http.client.HTTPConnection("127.0.0.1", r.port, timeout=60) for r in replicas]
        for q, h in QUESTIONS:
            (sa, a), (sb, b) = (ask(c, q, h) for c in conns)
            assert sa == sb == 200 and comparable(a) == comparable(b), q
    finally:
        for r in replicas:
            r.stop()
        server.stop()
