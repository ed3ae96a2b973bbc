"""Faults with the Milvus store, on a milvus-lite server process that the tests stop and start:
unreachable at start (CLI one-line error and non-zero exit; server 503 with the reason, then
ready by itself), lost mid-traffic (JSON 503 with Retry-After, never a 500, recovery by itself),
collections built with other models or settings, and a second concurrent build refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from assistant import index as faiss_index  # noqa: E402
from assistant import milvus_store as ms  # noqa: E402
from assistant.service import Assistant  # noqa: E402

from .milvus_fakes import LiteServer, encoders, fake_annotate, free_port, settings, wait_for, write_articles  # noqa: E402

pytestmark = pytest.mark.slow  # milvus-lite servers and CLI processes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fake_annotator(monkeypatch):
    monkeypatch.setattr(ms, "annotate", fake_annotate)
    monkeypatch.setattr(faiss_index, "annotate", fake_annotate)


@pytest.fixture
def server(tmp_path):
    srv = LiteServer(tmp_path / "milvus-data").start()
    yield srv
    srv.stop()


def milvus_settings(tmp_path, uri, **kw):
    docs = tmp_path / "docs"
    if not docs.exists():
        write_articles(docs)
    return settings(tmp_path, docs, milvus_uri=uri, milvus_poll_seconds=0.2, milvus_timeout=3.0, answer_cache_size=0, **kw)


def build_index(s, enc=None):
    conn = ms.Connection(s)
    try:
        return ms.build(conn, s, enc or encoders())
    finally:
        conn.close()


class App:
    """A TestClient on the real app with a Milvus assistant (fake encoders), lifespan running."""

    def __init__(self, s, enc=None, api=None):
        self.assistant = Assistant(s, embedder=enc or encoders())
        self.app = create_app(s, self.assistant, api)
        self.client = TestClient(self.app)

    def __enter__(self):
        self.client.__enter__()
        return self

    def __exit__(self, *exc):
        self.client.__exit__(*exc)
        assert self.app.state.internal_errors == 0, "a request reached the catch-all 500 handler"

    def ready(self):
        r = self.client.get("/api/health")
        return r.json() if r.status_code == 200 else None


def test_health_reports_the_store(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    build_index(s)
    with App(s) as a:
        health = wait_for(a.ready)
        assert health["store"] == "milvus" and health["documents"] == 4 and health["chunks"] > 4
        r = a.client.post("/api/ask", json={"question": "Combien d'argent pour la fondation ?"})
        assert r.status_code == 200 and "answer" in r.json()
        r = a.client.get("/api/search", params={"q": "fondation milliards"})
        assert r.status_code == 200 and r.json()["results"][0]["doc_id"] == "sommet"
        doc = a.client.get("/api/documents/sommet").json()
        assert "Grand Palais" in doc["text"]
        assert a.client.get("/api/documents/nope").status_code == 404
        assert len(a.client.get("/api/documents").json()) == 4
    # the FAISS store says so too
    f = s.model_copy(update={"store": "faiss"})
    assistant = Assistant(f, embedder=encoders()).load()
    with TestClient(create_app(f, assistant)) as c:
        assert c.get("/api/health").json()["store"] == "faiss"


def test_milvus_lost_mid_traffic_then_back(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    build_index(s)
    questions = [f"Combien d'argent pour la fondation, question {i} ?" for i in range(40)]
    with App(s) as a:
        wait_for(a.ready)
        assert a.client.post("/api/ask", json={"question": questions[0]}).status_code == 200
        server.stop()
        for q in questions[1:6]:
            r = a.client.post("/api/ask", json={"question": q})
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/json")
            assert int(r.headers["Retry-After"]) >= 1
            assert "unreachable" in r.json()["detail"]
        r = a.client.get("/api/search", params={"q": "fondation milliards"})
        assert r.status_code == 503 and "Retry-After" in r.headers
        r = a.client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": questions[7]}]})
        assert r.status_code == 503 and r.json()["error"]["type"] == "server_error"
        health = wait_for(lambda: (lambda r: r if r.status_code == 503 else None)(a.client.get("/api/health")))
        assert "unreachable" in health.json()["detail"] and "Retry-After" in health.headers
        server.start()
        wait_for(a.ready, timeout=60)
        ok = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(
            a.client.post("/api/ask", json={"question": questions[10]})), timeout=30)
        assert "answer" in ok.json()
        assert a.client.get("/api/search", params={"q": "fondation milliards"}).status_code == 200


def test_unreachable_at_start_then_ready_by_itself(tmp_path):
    port = free_port()
    srv = LiteServer(tmp_path / "milvus-data", port)
    s = milvus_settings(tmp_path, srv.uri)
    srv.start()
    build_index(s)
    srv.stop()
    try:
        with App(s) as a:
            r = wait_for(lambda: (lambda r: r if "unreachable" in r.text else None)(a.client.get("/api/health")))
            assert r.status_code == 503 and "Retry-After" in r.headers and f"127.0.0.1:{port}" in r.json()["detail"]
            r = a.client.post("/api/ask", json={"question": "Qui accueillera le prochain sommet ?"})
            assert r.status_code == 503 and "unreachable" in r.json()["detail"]
            srv.start()
            health = wait_for(a.ready, timeout=60)
            assert health["store"] == "milvus"
            assert a.client.post("/api/ask", json={"question": "Qui accueillera le prochain sommet ?"}).status_code == 200
    finally:
        srv.stop()


def test_no_index_yet_then_a_build_appears(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    with App(s) as a:
        r = wait_for(lambda: (lambda r: r if "no index" in r.text else None)(a.client.get("/api/health")))
        assert r.status_code == 503 and "summit build" in r.json()["detail"]
        build_index(s)
        assert wait_for(a.ready)["documents"] == 4


def test_collections_of_another_model_are_detected(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    build_index(s)
    other = encoders()
    other.members[0].id = "another-model"
    with App(s, other) as a:
        r = wait_for(lambda: (lambda r: r if r.status_code == 503 and "built with" in r.text else None)(a.client.get("/api/health")))
        assert "summit build" in r.json()["detail"]
    changed = s.model_copy(update={"chunk_sentences": 2})
    with App(changed) as a:
        r = wait_for(lambda: (lambda r: r if "built with" in r.text else None)(a.client.get("/api/health")))
        assert "chunking" in r.json()["detail"]


def test_admin_reload_updates_milvus_and_replicas_follow(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    build_index(s)
    admin = ApiSettings(admin_token="secret")
    with App(s, api=admin) as a, App(s, api=admin) as b:
        first = wait_for(a.ready)["build_id"]
        assert wait_for(b.ready)["build_id"] == first
        (tmp_path / "docs" / "talents.md").unlink()
        r = a.client.post("/api/admin/reload", headers={"Authorization": "Bearer secret"})
        assert r.status_code == 200 and r.json()["built"]
        new = r.json()["build_id"]
        assert a.ready()["build_id"] == new and a.ready()["documents"] == 3
        wait_for(lambda: (b.ready() or {}).get("build_id") == new)  # the other replica switched by itself
        assert b.client.get("/api/documents/talents").status_code == 404


# ---- the CLI -----------------------------------------------------------------------------------


def run_cli(tmp_path, *args, env=None):
    full_env = {**os.environ, "SUMMIT_STORE": "milvus", "SUMMIT_DOCUMENTS_DIR": str(tmp_path / "docs"),
                "SUMMIT_INDEX_DIR": str(tmp_path / "faiss"), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True, timeout=300,
                          cwd=str(REPO), env=full_env)


def test_cli_unreachable_milvus_is_one_line_and_non_zero(tmp_path):
    write_articles(tmp_path / "docs")
    env = {"SUMMIT_MILVUS_URI": f"http://127.0.0.1:{free_port()}", "SUMMIT_MILVUS_TIMEOUT": "3"}
    for args in (("ask", "Qui accueillera le prochain sommet ?"), ("build",)):
        out = run_cli(tmp_path, *args, env=env)
        assert out.returncode == 6, out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "unreachable" in lines[0] and "SUMMIT_MILVUS_URI" in lines[0], out.stderr
    out = run_cli(tmp_path, "ask", "x", env={"SUMMIT_MILVUS_URI": "ftp://nowhere"})
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1


def test_cli_second_build_is_refused(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    build_index(s)
    conn = ms.Connection(s)
    try:
        with ms.BuildLock(conn, s.milvus_prefix):
            out = run_cli(tmp_path, "build", "--force", env={"SUMMIT_MILVUS_URI": server.uri})
    finally:
        conn.close()
    assert out.returncode == 7, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "another build" in lines[0]


def test_cli_mismatched_index_is_one_line(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    build_index(s)  # fake encoders: the CLI's real models differ
    out = run_cli(tmp_path, "ask", "Qui accueillera le prochain sommet ?", env={"SUMMIT_MILVUS_URI": server.uri})
    assert out.returncode == 4, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "built with" in lines[0] and "summit build" in lines[0]


def test_a_replica_stays_on_its_build_when_a_newer_one_needs_other_settings(tmp_path, server):
    s = milvus_settings(tmp_path, server.uri)
    build_index(s)
    with App(s) as a:
        old = wait_for(a.ready)["build_id"]
        build_index(s.model_copy(update={"chunk_sentences": 2}))  # a rolling upgrade: new settings, published first
        follower = a.app.state.follower
        wait_for(lambda: follower.pending is not None)
        assert "chunking" in follower.pending
        health = a.ready()
        assert health is not None and health["build_id"] == old  # still answering from the build it can read
        assert a.client.get("/api/search", params={"q": "fondation"}).status_code == 200
