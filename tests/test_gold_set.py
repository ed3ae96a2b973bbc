"""The gold question set (eval/questions.jsonl) and the calibration set (eval/dev.jsonl) are
consistent with the articles in documents/: evidence quoted verbatim, answers in the source,
enough questions of every kind. No model needed."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from assistant.documents import load_documents
from assistant.evaluation import load_questions, norm
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "eval" / "questions.jsonl"
DEV = ROOT / "eval" / "dev.jsonl"
SETS = {"gold": GOLD, "dev": DEV}


@lru_cache(maxsize=1)
def cleaned_texts() -> dict[str, str]:
    docs, _ = load_documents(ROOT / "documents", Settings().boilerplate_patterns)
    return {d.doc_id: d.text for d in docs}


@lru_cache(maxsize=2)
def questions(name: str):
    return load_questions(SETS[name])


def answerable(name: str):
    return [q for q in questions(name) if q.answerable]


@pytest.mark.parametrize("name", SETS)
def test_every_line_is_a_valid_question(name):
    assert questions(name)  # load_questions validates every line and rejects duplicate ids


@pytest.mark.parametrize("name", SETS)
def test_raw_lines_have_every_field(name):
    """The question format allows defaults; the committed sets spell every field out."""
    for n, line in enumerate(SETS[name].read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            missing = {"id", "question", "answers", "evidence", "answerable", "history", "lang"} - set(row)
            assert not missing, f"{SETS[name].name}:{n} lacks {sorted(missing)}"
            assert row["lang"] in ("fr", "en"), f"{SETS[name].name}:{n}: lang {row['lang']!r}"


@pytest.mark.parametrize("name", SETS)
def test_evidence_is_verbatim_in_the_cleaned_text_of_a_document(name):
    texts = cleaned_texts()
    missing = [(q.id, q.evidence) for q in answerable(name) if q.evidence and not any(q.evidence in t for t in texts.values())]
    assert not missing, f"evidence not found verbatim in any cleaned document: {missing}"


@pytest.mark.parametrize("name", SETS)
def test_answerable_questions_have_evidence_and_answers(name):
    bad = [q.id for q in answerable(name) if not q.evidence or not q.answers]
    assert not bad


@pytest.mark.parametrize("name", SETS)
def test_an_expected_answer_is_in_the_paragraph_holding_the_evidence(name):
    paragraphs = [p for t in cleaned_texts().values() for p in t.split("\n") if p.strip()]
    bad = []
    for q in answerable(name):
        holding = [norm(p) for p in paragraphs if q.evidence in p]
        if not any(norm(a) in p for a in q.answers for p in holding):
            bad.append((q.id, q.answers))
    assert not bad, f"no expected answer next to the evidence: {bad}"


@pytest.mark.parametrize("name", SETS)
def test_every_expected_answer_occurs_in_some_document(name):
    corpus = norm("\n".join(cleaned_texts().values()))
    bad = [(q.id, a) for q in answerable(name) for a in q.answers if norm(a) not in corpus]
    assert not bad, f"expected answers that no document contains: {bad}"


@pytest.mark.parametrize("name", SETS)
def test_unanswerable_questions_have_no_answers(name):
    bad = [q.id for q in questions(name) if not q.answerable and (q.answers or q.evidence)]
    assert not bad


@pytest.mark.parametrize("name", SETS)
def test_follow_up_history_is_well_formed(name):
    for q in questions(name):
        assert all(h.strip() for h in q.history), q.id
        assert q.question not in q.history, q.id


def test_gold_set_counts():
    qs = questions("gold")
    by_lang = {lang: sum(q.lang == lang for q in qs) for lang in ("fr", "en")}
    assert len(qs) >= 60
    assert by_lang["fr"] >= 25, by_lang
    assert by_lang["en"] >= 25, by_lang
    assert sum(not q.answerable for q in qs) >= 10
    assert sum(bool(q.history) for q in qs) >= 8


def test_ids_are_unique_across_the_two_sets():
    gold, dev = {q.id for q in questions("gold")}, {q.id for q in questions("dev")}
    assert len(gold) == len(questions("gold")) and len(dev) == len(questions("dev"))
    assert not gold & dev


def test_no_dev_question_leaks_into_the_gold_set():
    """dev.jsonl is for calibration; the gold set must not repeat its questions."""
    gold = {(norm(q.question), tuple(norm(h) for h in q.history)) for q in questions("gold")}
    leaked = [q.id for q in questions("dev") if (norm(q.question), tuple(norm(h) for h in q.history)) in gold]
    assert not leaked
