"""Quality floors on the held-out test split: the real models, documents/ and every test text of
eval/corpus/ indexed together, the test questions of eval/splits.json, hybrid mode, k=5. The
floors are data (eval/floors.json), set from measured numbers minus a margin; re-set them in the
same commit as a deliberate change in quality. No timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import evaluation as ev

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
FLOORS_PATH = ROOT / "eval" / "floors.json"
SPLITS = ROOT / "eval" / "splits.json"


def load_floors() -> dict[str, dict]:
    floors = json.loads(FLOORS_PATH.read_text(encoding="utf-8"))
    return {k: v for k, v in floors.items() if not k.startswith("_")}


FLOORS = load_floors()


@pytest.fixture(scope="session")
def eval_assistant(tmp_path_factory):
    """documents/ + eval/corpus/ with an index built in a temporary folder."""
    from assistant.service import Assistant
    from assistant.settings import Settings

    settings = Settings(documents_dir=ROOT / "documents", extra_documents_dirs=[ROOT / "eval" / "corpus"],
                        index_dir=tmp_path_factory.mktemp("eval-index"))
    return Assistant(settings).load()


@pytest.fixture(scope="session")
def split_results(eval_assistant):
    out = {}
    for split in FLOORS:
        rows = ev.run_questions(eval_assistant, ev.load_question_files(ev.split_files(SPLITS, split)), mode="hybrid", k=5)
        out[split] = (ev.summarize(rows), rows)
    return out


@pytest.mark.parametrize("split", list(FLOORS))
def test_split_meets_its_floors(split_results, split):
    summary, rows = split_results[split]
    failures = ev.check_floors(summary, FLOORS[split])
    missed = [f"{r['id']} ({r['outcome']})" for r in ev.misses(rows)]
    assert not failures, f"{split}: " + "; ".join(failures) + f"\nmisses: {', '.join(missed)}"


@pytest.mark.parametrize("question", ["Who co-chairs the summit?", "Qui co-préside le sommet ?"])
def test_the_co_chair_is_found_with_the_whole_corpus_indexed(eval_assistant, question):
    answer = eval_assistant.ask(question)
    assert answer.found and "Narendra Modi" in answer.answer
    first = answer.citations[0]
    sentence = first.passage[first.highlights[0][0] - first.start : first.highlights[0][1] - first.start]
    assert "Modi" in sentence and ev.fold_accents(sentence.lower()).count("presid") >= 1, sentence
