"""The `summit` command: JSON output, idempotent build, one-line errors with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .fakes import write_corpus

pytestmark = pytest.mark.slow  # every test runs the `summit` command in a process

REPO = Path(__file__).resolve().parents[1]


def summit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.mark.integration
def test_ask_json_prints_exactly_the_answer_object(summit_settings, summit_assistant):
    run = summit("ask", "Qui co-préside le sommet ?", "--json", "--k", "2",
                 "--index", str(summit_settings.index_dir), "--documents", str(summit_settings.documents_dir))
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert list(answer) == ["question", "language", "found", "answer", "citations", "took_ms"]
    assert answer["found"] and "Modi" in answer["answer"] and len(answer["citations"]) == 2
    assert "Narendra Modi co-présidera" in answer["citations"][0]["passage"]


@pytest.mark.integration
def test_build_is_idempotent_from_the_command_line(summit_settings, summit_assistant):
    run = summit("build", "--index", str(summit_settings.index_dir), "--documents", str(summit_settings.documents_dir))
    assert run.returncode == 0 and "up to date" in run.stdout


@pytest.mark.integration
def test_env_vars_choose_the_folders(summit_settings, summit_assistant):
    run = summit("ask", "Who co-chairs the summit?", "--json",
                 env={"SUMMIT_INDEX_DIR": str(summit_settings.index_dir), "SUMMIT_DOCUMENTS_DIR": str(summit_settings.documents_dir)})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["answer"] == "Narendra Modi"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ask", ""], 2, "question is empty"),
        (["ask", "x" * 1001], 2, "1001 characters"),
        (["ask", "ok?", "--k", "0"], 2, "k must be"),
        (["ask", "ok?", "--mode", "semantic"], 2, "mode must be"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(args, code, message):
    run = summit(*args)
    assert run.returncode == code
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr


def test_bad_document_names_the_file(tmp_path):
    write_corpus(tmp_path / "docs", {"ok.md": "---\ntitle: T\nsource: S\n---\nUne phrase.\n", "bad.md": "pas de front matter"})
    run = summit("build", "--documents", str(tmp_path / "docs"), "--index", str(tmp_path / "index"))
    assert run.returncode == 3
    assert "bad.md" in run.stderr and "front matter" in run.stderr and "Traceback" not in run.stderr


def test_missing_documents_folder(tmp_path):
    run = summit("ask", "Qui ?", "--documents", str(tmp_path / "nope"), "--index", str(tmp_path / "index"))
    assert run.returncode == 3 and "not a folder of documents" in run.stderr


# ---- summit add / summit remove (issue #11) ----------------------------------------------------

FIXTURES = REPO / "tests" / "fixtures" / "ingest"


def _corpus(tmp_path: Path, pristine: Path) -> list[str]:
    import shutil

    shutil.copytree(pristine / "documents", tmp_path / "documents")
    shutil.copytree(pristine / "index", tmp_path / "index", symlinks=True)
    return ["--documents", str(tmp_path / "documents"), "--index", str(tmp_path / "index")]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.integration
def test_add_html_then_ask_then_remove(tmp_path, pristine_corpus):
    where = _corpus(tmp_path, pristine_corpus)
    run = summit("add", str(FIXTURES / "en-wire.html"), *where, "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    added = result["added"][0]
    assert (added["doc_id"], added["source"], added["published"], added["format"]) == ("en-wire", "Continental Press Agency", "2025-02-11", "html")
    assert result["build"]["reused_documents"] == 2  # the shipped articles were not embedded again
    assert (tmp_path / "documents" / "en-wire.md").is_file() and (tmp_path / "documents" / "originals" / "en-wire.html").is_file()
    ask = summit("ask", "How many countries backed the statement?", "--json", *where)
    assert ask.returncode == 0 and json.loads(ask.stdout)["citations"][0]["doc_id"] == "en-wire"
    build = summit("build", *where)
    assert build.returncode == 0 and "up to date" in build.stdout  # the original beside the .md is not a document
    gone = summit("remove", "en-wire", *where)
    assert gone.returncode == 0 and "removed en-wire (en-wire.md, originals/en-wire.html)" in gone.stdout
    assert not (tmp_path / "documents" / "en-wire.md").exists()


@pytest.mark.integration
def test_add_from_standard_input(tmp_path, pristine_corpus):
    where = _corpus(tmp_path, pristine_corpus)
    run = subprocess.run([sys.executable, "-m", "assistant", "add", "-", *where, "--source", "Agence", "--published", "2025-02-10"],
                         cwd=REPO, capture_output=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
                         input="La Bretagne au sommet\n\nLa délégation bretonne apportera un kouign-amann géant de 40 kilos.\n".encode())
    assert run.returncode == 0, run.stderr
    out = run.stdout.decode()
    assert "added la-bretagne-au-sommet: La Bretagne au sommet — Agence, 2025-02-10 (text" in out
    assert (tmp_path / "documents" / "originals" / "la-bretagne-au-sommet.txt").is_file()


def _put(name: str, data: bytes | str):
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    return make


@pytest.mark.parametrize(
    "make, extra, code, message",
    [
        (_put("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64)), [], 3, "unsupported type ('.png')"),
        (_put("photo.html", b"\x89PNG\r\n\x1a\n" + bytes(64)), [], 3, "is a PNG image"),
        (_put("menu.html", "<html><body><nav><a href='/'>A</a><a href='/b'>B</a></nav></body></html>"), [], 3, "empty after extraction"),
        (_put("empty.txt", ""), [], 3, "is empty"),
        (_put("big.txt", b"x" * 10_000), [], 3, "over the 8,192-byte limit"),
        (_put("note.txt", "Titre\n\nAssez de mots pour un article ici."), [], 3, "needs a source"),
        (lambda d: d / "missing.html", [], 2, "no such file"),
        (lambda d: FIXTURES / "en-wire.html", ["--id", "../etc/passwd"], 2, "not a valid document id"),
        (lambda d: FIXTURES / "en-wire.html", ["--language", "de"], 2, "language must be"),
        (lambda d: FIXTURES / "en-wire.html", ["--id", "rtl-une-semaine-pour-l-ia"], 3, "already exists"),
    ],
)
def test_add_refuses_bad_files_with_one_line(tmp_path, make, extra, code, message):
    from .fakes import write_corpus

    write_corpus(tmp_path / "docs", {"rtl-une-semaine-pour-l-ia.md": "---\ntitle: T\nsource: S\n---\nUne phrase assez longue ici.\n"})
    before = _files(tmp_path / "docs")
    path = make(tmp_path)
    run = summit("add", str(path), "--documents", str(tmp_path / "docs"), "--index", str(tmp_path / "index"), *extra,
                 env={"SUMMIT_MAX_UPLOAD_BYTES": "8192"})
    assert run.returncode == code, (run.stdout, run.stderr)
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert _files(tmp_path / "docs") == before and not (tmp_path / "index").exists()  # refused before any build


def test_remove_unknown_document(tmp_path):
    from .fakes import write_corpus

    write_corpus(tmp_path / "docs")
    run = summit("remove", "nope", "--documents", str(tmp_path / "docs"), "--index", str(tmp_path / "index"))
    assert run.returncode == 3 and "no such document" in run.stderr
    run = summit("remove", "../a", "--documents", str(tmp_path / "docs"), "--index", str(tmp_path / "index"))
    assert run.returncode == 2 and "not a valid document id" in run.stderr
