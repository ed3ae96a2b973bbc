"""Layers: the library stands alone, the API and the harnesses sit on top of it.

`assistant/` must import and answer with no web framework, plotting or benchmark code loaded,
and a one-shot `summit ask` must not pay for torch.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "assistant"
# Packages above the library (or only wanted by harnesses and the service).
UPPER = ("api", "benchmarks", "fastapi", "uvicorn", "starlette", "matplotlib")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "SUMMIT_CACHE_DIR": ""})
    assert run.returncode == 0, run.stderr
    return set(json.loads(run.stdout.strip().splitlines()[-1]))


@pytest.mark.slow  # a fresh interpreter
def test_importing_the_library_and_its_cli_loads_no_upper_layer():
    loaded = _loaded_after("import assistant.service, assistant.cli, assistant.evaluation, assistant.ingest")
    assert loaded.isdisjoint(UPPER), sorted(loaded & set(UPPER))
    assert "torch" not in loaded and "sentence_transformers" not in loaded


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, id(node) in top))
    return found


def test_no_library_module_imports_the_api_or_the_harnesses():
    """Only the CLI reaches up, lazily, for `summit serve` / `bench` / `eval` reports."""
    offenders = []
    for path in sorted(LIBRARY.glob("*.py")):
        for module, at_top in _imports(path):
            if module.split(".")[0] in UPPER and (at_top or path.name != "cli.py"):
                offenders.append(f"{path.name}: {module}{' (module level)' if at_top else ''}")
    assert not offenders, offenders


@pytest.mark.integration
def test_a_one_shot_question_never_imports_torch(summit_settings, summit_assistant):
    """`summit ask` with an index answers through the bundled engines (same vectors as the
    SentenceTransformer, tests/test_embedding.py): torch and sentence-transformers stay unloaded."""
    code = (
        "import sys\nfrom assistant.cli import app\n"
        f"try:\n    app(['ask', 'Who co-chairs the summit?', '--json', '--index', {str(summit_settings.index_dir)!r},"
        f" '--documents', {str(summit_settings.documents_dir)!r}])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
    )
    probe = code + "import json\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    loaded = set(json.loads(lines[-1]))
    answer = json.loads("\n".join(lines[:-1]))
    assert answer["found"] and "Modi" in answer["answer"]
    assert "torch" not in loaded and "sentence_transformers" not in loaded
    assert loaded.isdisjoint(UPPER), sorted(loaded & set(UPPER))


@pytest.mark.integration
def test_a_one_shot_assistant_answers_exactly_like_a_warmed_up_one(summit_settings, summit_assistant):
    """warm_up=False (what `summit ask` uses) only defers the per-sentence tables."""
    from assistant.service import Assistant

    cold = Assistant(summit_settings, embedder=summit_assistant.embedder, warm_up=False).load(rebuild="never")
    asked = [("Qui co-préside le sommet ?", []), ("Who co-chairs the summit?", []),
             ("Où se réuniront les chefs d'État ?", []), ("Et quand ?", ["Où se réuniront les chefs d'État ?"]),
             ("Quelle est la recette de la tartiflette ?", [])]
    for question, history in asked:
        a = cold.ask(question, history=history).to_dict()
        b = summit_assistant.ask(question, history=history).to_dict()
        a.pop("took_ms"), b.pop("took_ms")
        assert a == b, question
