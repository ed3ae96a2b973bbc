"""The `summit` command: JSON output, idempotent build, one-line errors with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .fakes import write_corpus

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
