"""The held-out evaluation set is consistent with its articles and shaped as the issue asks:
test texts in eval/corpus/ (never in documents/), questions split by article into dev and test,
evidence verbatim, answers next to their evidence, enough questions of every kind. No model."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from assistant import evaluation as ev
from assistant.documents import load_documents
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ROOT / "eval" / "splits.json"
CORPUS = ROOT / "eval" / "corpus"


@lru_cache(maxsize=1)
def documents():
    patterns = Settings().boilerplate_patterns
    seed, _ = load_documents(ROOT / "documents", patterns)
    tests, _ = load_documents(CORPUS, patterns)
    return seed, tests


@lru_cache(maxsize=1)
def texts() -> dict[str, str]:
    seed, tests = documents()
    return {d.doc_id: d.text for d in seed + tests}


@lru_cache(maxsize=2)
def split(name: str) -> list[ev.Question]:
    return ev.load_question_files(ev.split_files(SPLITS, name))


def evidences(q):
    return [q.evidence] if isinstance(q.evidence, str) else list(q.evidence or [])


def test_test_texts_are_marked_and_stay_out_of_documents():
    seed, tests = documents()
    assert len(tests) >= 14
    assert sum(d.language == "en" for d in tests) >= 3 and sum(d.language == "fr" for d in tests) > len(tests) / 2
    for d in tests:
        assert re.search(r"test", d.source, re.I), f"{d.doc_id}: source must say it is a test text"
        assert d.published, f"{d.doc_id}: test texts carry a published date (sources that disagree)"
    assert not {d.doc_id for d in seed} & {d.doc_id for d in tests}
    assert all("test" not in d.source.lower() for d in seed)


@pytest.mark.parametrize("name", ["dev", "test"])
def test_every_evidence_is_verbatim_and_an_answer_is_beside_it(name):
    paragraphs = [p for t in texts().values() for p in t.split("\n") if p.strip()]
    missing, far = [], []
    for q in split(name):
        if not q.answerable:
            continue
        assert q.answers and q.evidence, q.id
        for e in evidences(q) + ([q.older_evidence] if q.older_evidence else []):
            if not any(e in t for t in texts().values()):
                missing.append((q.id, e))
        if q.type == "yesno":
            continue
        for e in evidences(q):
            holding = [ev.fold_accents(ev.norm(p)) for p in paragraphs if e in p]
            if holding and not any(ev.fold_accents(ev.norm(a)) in p for a in q.answers for p in holding):
                far.append((q.id, e))
    assert not missing, f"evidence not verbatim in any cleaned article: {missing}"
    assert not far, f"no expected answer in the paragraph of this evidence: {far}"


@pytest.mark.parametrize("name", ["dev", "test"])
def test_unanswerable_questions_have_a_kind_and_nothing_to_find(name):
    for q in split(name):
        if not q.answerable:
            assert q.kind in ("near_miss", "off_topic"), q.id
            assert not q.answers and not q.evidence, q.id
        assert all(h.strip() for h in q.history) and q.question not in q.history, q.id
        assert q.lang in ("fr", "en"), q.id


def test_the_split_is_by_article():
    """No article has questions in both splits, and the seed articles' questions are in dev."""
    seed, tests = documents()
    by_split = {}
    for name in ("dev", "test"):
        by_split[name] = {q.doc for q in split(name) if q.doc}
    assert not by_split["dev"] & by_split["test"]
    assert {d.doc_id for d in tests} <= by_split["dev"] | by_split["test"]
    assert by_split["test"] and all(doc.startswith("t-") for doc in by_split["test"])
    dev_files = [p.name for p in ev.split_files(SPLITS, "dev")]
    assert any(f.startswith("seed-") for f in dev_files)
    assert not any(f.startswith("seed-") for f in (p.name for p in ev.split_files(SPLITS, "test")))


def test_no_question_is_asked_in_both_splits():
    key = lambda q: (ev.norm(q.question), tuple(ev.norm(h) for h in q.history))  # noqa: E731
    dev = {key(q) for q in split("dev")}
    assert not [q.id for q in split("test") if key(q) in dev]


def test_the_set_has_every_kind_of_question_the_issue_asks_for():
    qs = split("dev") + split("test")
    kinds = Counter(q.kind or ("answerable" if q.answerable else "near_miss") for q in qs)
    langs = Counter(q.lang for q in qs)
    corpus_qs = [q for q in qs if q.doc and q.doc[:2] in ("d-", "t-") or q.kind == "off_topic"]
    assert len(qs) >= 300 and len(corpus_qs) >= 300
    assert kinds["near_miss"] >= 60 and kinds["off_topic"] >= 20
    assert sum(bool(q.history) and q.answerable for q in qs) >= 40
    assert all(1 <= len(q.history) <= 3 for q in corpus_qs if q.history)
    assert abs(langs["en"] - langs["fr"]) <= 0.1 * len(qs), langs
    types = Counter(q.type for q in corpus_qs)
    for t in ("who", "what", "when", "where", "how_much", "how_many", "which", "yesno", "why"):
        assert types[t] >= 5, (t, types)
    assert sum(bool(q.older_evidence) for q in qs) >= 6


def test_conflict_questions_are_answered_by_the_newest_article():
    dated = {}
    _, tests = documents()
    for d in tests:
        dated[d.doc_id] = d.published
    for q in split("dev") + split("test"):
        if not q.older_evidence:
            continue
        newest = [doc for doc, t in texts().items() if any(e in t for e in evidences(q)) and doc in dated]
        older = [doc for doc, t in texts().items() if q.older_evidence in t and doc in dated]
        assert newest and older, q.id
        assert max(dated[d] for d in newest) > min(dated[d] for d in older), q.id


def test_raw_lines_spell_out_the_core_fields():
    for path in ev.split_files(SPLITS, "dev") + ev.split_files(SPLITS, "test"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                missing = {"id", "question", "answerable", "lang"} - set(json.loads(line))
                assert not missing, f"{path.name}:{n} lacks {sorted(missing)}"
