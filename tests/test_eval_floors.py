"""Quality floors: the gold set (eval/questions.jsonl) evaluated with the real model on the real
articles must stay at or above the floors in eval/floors.json (see eval/README.md, "Floors").

The floors are data, not code: re-set them in eval/floors.json after a deliberate change in
quality. No timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import evaluation as ev

ROOT = Path(__file__).resolve().parents[1]
FLOORS_PATH = ROOT / "eval" / "floors.json"
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def load_floors() -> dict[str, dict]:
    floors = json.loads(FLOORS_PATH.read_text(encoding="utf-8"))
    return {mode: bounds for mode, bounds in floors.items() if not mode.startswith("_")}


FLOORS = load_floors()


@pytest.fixture(scope="session")
def gold_assistant(tmp_path_factory):
    """The assistant over the repository's documents, with an index built in a temporary folder."""
    from assistant.service import Assistant
    from assistant.settings import Settings

    settings = Settings(documents_dir=ROOT / "documents", index_dir=tmp_path_factory.mktemp("gold-index"))
    return Assistant(settings).load()


@pytest.fixture(scope="session")
def gold_results(gold_assistant):
    """Summaries of the gold set, per mode that has floors (each mode run once per session)."""
    questions = ev.load_questions(QUESTIONS)
    rows = ev.run_modes(gold_assistant, questions, list(FLOORS), k=5)
    return ev.build_report(rows)


@pytest.mark.integration
@pytest.mark.parametrize("mode", list(FLOORS))
def test_gold_set_meets_its_floors(gold_results, mode):
    summary = gold_results["modes"][mode]
    failures = ev.check_floors(summary, FLOORS[mode])
    missed = [f"{r['id']} ({r['outcome']})" for r in ev.misses([r for r in gold_results["questions"] if r["mode"] == mode])]
    assert not failures, f"{mode}: " + "; ".join(failures) + f"\nmisses: {', '.join(missed)}"


@pytest.mark.integration
def test_every_gold_question_got_a_row(gold_results):
    n = len(ev.load_questions(QUESTIONS))
    for mode in FLOORS:
        assert sum(r["mode"] == mode for r in gold_results["questions"]) == n
