"""Answering logic on a tiny corpus with the fake embedder: typed spans, abstention, citations,
follow-ups, input validation."""

from __future__ import annotations

import pytest

from assistant.answering import extract_span, question_type
from assistant.conversation import is_follow_up
from assistant.errors import InvalidInputError
from assistant.service import Assistant, validate
from assistant.settings import Settings

from .fakes import FakeEmbedder, write_corpus


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_corpus(root / "documents")
    settings = Settings(documents_dir=root / "documents", index_dir=root / "index")
    return Assistant(settings, FakeEmbedder()).load()


@pytest.mark.parametrize(
    "question, kind",
    [
        ("Who co-chairs the summit?", "person"),
        ("Qui co-préside le sommet ?", "person"),
        ("Which Indian leader will attend?", "person"),
        ("How much will the foundation get?", "money"),
        ("Combien d'euros pour la fondation ?", "money"),
        ("How many heads of state are expected?", "count"),
        ("Combien de chefs d'État sont attendus ?", "count"),
        ("When is the summit?", "date"),
        ("Quand a lieu le sommet ?", "date"),
        ("Where will the round tables take place?", "place"),
        ("Où se tiendra le sommet ?", "place"),
        ("Where was Macron when he said when it would be?", "place"),
        ("Which company did he co-found?", "org"),
        ("Who is Arthur Mensch?", None),
        ("Pourquoi ce sommet ?", None),
    ],
)
def test_question_types(question, kind):
    assert question_type(question) == kind


def test_follow_up_detection():
    assert is_follow_up("Which company did he co-found?", ["Who is Arthur Mensch?"])
    assert is_follow_up("Et où ?", ["Quand ?"])
    assert not is_follow_up("Who co-chairs the summit?", ["Qui est Arthur Mensch ?"])
    assert not is_follow_up("Which company did he co-found?", [])


def test_typed_answers_are_short_spans(tiny):
    money = tiny.ask("Combien d'euros pour la fondation ?")
    assert money.found and money.answer == "2,5 milliards d'euros"
    place = tiny.ask("Où se réuniront les chefs d'État ?")
    assert place.found and place.answer == "Grand Palais"


def test_citations_are_numbered_with_offsets_into_the_document(tiny):
    answer = tiny.ask("Le sommet réunira des chefs d'État au Grand Palais", k=3)
    assert answer.found and [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations:
        text = tiny.document(c.doc_id)["text"]
        assert text[c.start : c.end] == c.passage
        (h0, h1), = c.highlights
        assert c.start <= h0 < h1 <= c.end
    assert "Grand Palais" in answer.citations[0].passage
    assert len({c.chunk_id for c in answer.citations}) == len(answer.citations)


def test_unrelated_question_abstains_with_message_in_its_language(tiny):
    en = tiny.ask("What is the best recipe for chocolate cake with strawberries?")
    assert not en.found and en.citations == [] and "sources" in en.answer and en.language == "en"
    fr = tiny.ask("Quelle est la meilleure recette de tartiflette savoyarde ?")
    assert not fr.found and fr.citations == [] and "sources" in fr.answer and fr.language == "fr"


def test_answer_object_has_exactly_the_public_fields(tiny):
    d = tiny.ask("Qui co-présidera l'événement ?").to_dict()
    assert list(d) == ["question", "language", "found", "answer", "citations", "took_ms"]
    assert list(d["citations"][0]) == ["n", "chunk_id", "doc_id", "title", "source", "url", "published",
                                       "passage", "start", "end", "highlights", "score"]


def test_search_returns_ranked_passages_without_duplicates(tiny):
    results = tiny.search("Narendra Modi co-présidera", k=3)
    assert results and "Modi" in results[0].passage
    assert len({r.chunk_id for r in results}) == len(results)


@pytest.mark.parametrize(
    "question, history, k, mode, message",
    [
        ("", [], 5, "hybrid", "empty"),
        ("   \n", [], 5, "hybrid", "empty"),
        ("x" * 1001, [], 5, "hybrid", "1001 characters"),
        (None, [], 5, "hybrid", "must be a string"),
        ("ok?", "not a list", 5, "hybrid", "history"),
        ("ok?", ["a"] * 21, 5, "hybrid", "21 items"),
        ("ok?", ["x" * 1001], 5, "hybrid", "history item"),
        ("ok?", [], 0, "hybrid", "k must be"),
        ("ok?", [], 21, "hybrid", "k must be"),
        ("ok?", [], True, "hybrid", "k must be"),
        ("ok?", [], 5, "semantic", "mode must be"),
    ],
)
def test_bad_input_is_a_clear_error(question, history, k, mode, message):
    with pytest.raises(InvalidInputError, match=message):
        validate(question, history, k, mode)


def test_span_extraction_skips_names_the_question_already_has(tiny):
    q = tiny.retriever.analyze("Qui représentera la Chine à la place de Xi Jinping ?")
    sentence = "Le président chinois Xi Jinping ne viendra pas mais la Chine sera représentée par Ding Xuexiang."
    assert extract_span(sentence, "person", q, [sentence.index("représentée")]) == "Ding Xuexiang"


def test_answer_cache_returns_the_same_answer_and_is_keyed_by_build(tmp_path):
    write_corpus(tmp_path / "documents")
    settings = Settings(documents_dir=tmp_path / "documents", index_dir=tmp_path / "index")
    emb = FakeEmbedder()
    assistant = Assistant(settings, emb).load()
    first = assistant.ask("Combien d'euros pour la fondation ?")
    calls = emb.calls
    again = assistant.ask("Combien d'euros pour la fondation ?")
    assert emb.calls == calls  # served from the cache: nothing embedded again
    assert again.to_dict() | {"took_ms": 0} == first.to_dict() | {"took_ms": 0}
    assert again.citations is not first.citations
    assistant.retriever._cache.clear()  # the embedding cache, so that work shows as encode calls
    assistant.ask("Combien d'euros pour la fondation ?", k=1)
    assert emb.calls > calls  # another k is another answer
    (tmp_path / "documents" / "c.md").write_text("---\ntitle: C\nsource: S\n---\nLa fondation aura 3 milliards d'euros.\n", encoding="utf-8")
    assistant.build()
    calls = emb.calls
    assistant.ask("Combien d'euros pour la fondation ?")
    assert emb.calls > calls  # a new build is a new cache key


def test_answer_cache_can_be_turned_off(tmp_path):
    write_corpus(tmp_path / "documents")
    settings = Settings(documents_dir=tmp_path / "documents", index_dir=tmp_path / "index", answer_cache_size=0)
    emb = FakeEmbedder()
    assistant = Assistant(settings, emb).load()
    assistant.ask("Qui co-présidera l'événement ?")
    assistant.retriever._cache.clear()
    calls = emb.calls
    assistant.ask("Qui co-présidera l'événement ?")
    assert emb.calls > calls
