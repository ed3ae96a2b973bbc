"""Language centring of the dense cosines (assistant/centring.py), on invented vectors and a small
fake store: each side loses its language's mean direction before question and row are compared."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from assistant import centring, scoring
from assistant.retrieval import Retriever, Query
from tests.fakes import FakeEmbedder

DIM = 16


def _world(seed: int = 0):
    """Invented embeddings: a text is its meaning plus a strong shared direction for its language
    and kind (question or passage), as a multilingual encoder leaves them."""
    rng = np.random.default_rng(seed)
    meanings = centring.unit(rng.normal(size=(6, DIM)))
    offset = {k: 1.2 * centring.unit(rng.normal(size=DIM)) for k in ("q-en", "p-en", "p-fr")}

    def text(meaning: int, kind: str) -> np.ndarray:
        return centring.unit(meanings[meaning] + offset[kind] + 0.05 * rng.normal(size=DIM)).astype(np.float32)

    return text


def test_language_means_are_shrunk_toward_the_corpus_mean_when_a_language_has_few_rows():
    v = np.array([[1.0, 0.0]] * 98 + [[0.0, 1.0]] * 2, dtype=np.float32)
    means = centring.passage_means(v, ["fr"] * 98 + ["en"] * 2, shrink=50.0)
    overall = v.mean(axis=0)
    assert np.allclose(means[""], overall)
    assert np.allclose(means["fr"], (98 * np.array([1.0, 0.0]) + 50 * overall) / 148)
    # two English rows barely move their mean away from the corpus's
    assert np.linalg.norm(means["en"] - overall) < 0.05 * np.linalg.norm(np.array([0.0, 1.0]) - overall)
    assert centring.passage_means(np.zeros((0, 2)), []) == {}


def test_a_question_language_without_a_fitted_mean_uses_the_average_of_the_others():
    means = {"en": np.array([1.0, 0.0], np.float32), "fr": np.array([0.0, 1.0], np.float32)}
    np.testing.assert_allclose(centring.mean_for(means, "de"), [0.5, 0.5])
    got = centring.centre_query(np.array([2.0, 0.0]), means, "en")
    np.testing.assert_allclose(got, [1.0, 0.0])
    assert centring.mean_for({}, "en") is None
    np.testing.assert_allclose(centring.centre_query(np.array([0.6, 0.8]), {}, "en"), [0.6, 0.8])


def test_centring_lets_an_english_question_find_the_french_row_that_means_the_same():
    text = _world()
    rows = [text(0, "p-fr"), text(1, "p-en"), text(2, "p-en"), text(3, "p-fr"), text(4, "p-fr"), text(5, "p-en")]
    langs = ["fr", "en", "en", "fr", "fr", "en"]
    V = np.stack(rows)
    questions = {m: text(m, "q-en") for m in range(6)}
    raw_right = sum(int(np.argmax(V @ q) == m) for m, q in questions.items())
    # question means from other (invented) questions, passage means from the rows themselves
    qmeans = centring.query_means({"en": [text(m, "q-en") for m in range(6) for _ in range(3)]})
    pmeans = centring.passage_means(V, langs, shrink=0.0)
    M = np.stack([pmeans[lang] for lang in langs])
    centred_right = sum(int(np.argmax(centring.centred_cosines(centring.centre_query(q, qmeans, "en"), V, M)) == m)
                        for m, q in questions.items())
    assert centred_right == 6 and raw_right < centred_right


class _Store:
    """Two documents (French, English), one sentence per chunk; dense() ranks by inner product."""

    n_encoders = 1

    def __init__(self, vectors: np.ndarray, langs: list[str]):
        self.v = vectors
        self.docs = {lang: {"doc_id": lang, "language": lang} for lang in set(langs)}
        self.recs = [SimpleNamespace(doc_id=lang, chunk_ids=[i], sentence_ids=[i]) for i, lang in enumerate(langs)]
        self.searched_k = []

    def counts(self):
        return {"documents": len(self.docs), "chunks": len(self.v), "sentences": len(self.v)}

    def ids(self, level):
        return range(len(self.v))

    def sentence(self, sid):
        return self.recs[sid]

    chunk = sentence

    def document(self, doc_id):
        return self.docs.get(doc_id)

    def vectors(self, encoder, level, ids):
        return self.v[list(ids)]

    def dense(self, encoder, level, vector, k):
        self.searched_k.append(k)
        s = self.v @ vector
        order = np.argsort(-s)[:k]
        return [(int(i), float(s[i])) for i in order]


def _retriever(store, means=None, model_id="fake-16"):
    r = Retriever(store, FakeEmbedder(DIM, model_id))
    r.set_query_means(means)
    return r


class _SparseStore(_Store):
    """The same rows under ids that are not 0..n-1 (as Milvus numbers them): no centred table."""

    def ids(self, level):
        return list(range(len(self.v)))


@pytest.mark.parametrize("store_class", [_Store, _SparseStore])
def test_the_retriever_ranks_by_centred_cosines_once_question_means_are_installed(store_class):
    text = _world(1)
    langs = ["fr", "en", "en", "fr", "fr", "en"]
    store = store_class(np.stack([text(m, f"p-{lang}") for m, lang in enumerate(langs)]), langs)
    qmeans = centring.query_means({"en": [text(m, "q-en") for m in range(6) for _ in range(3)]})
    q = Query("?", "en", [text(3, "q-en")])
    raw = _retriever(store)
    assert raw.query_means == {}
    np.testing.assert_allclose(raw.cosines(q, 0, "sentence", [0, 1]), store.v[[0, 1]] @ q.vectors[0], rtol=1e-6)
    centred = _retriever(store, {"fake-16": {k: v.tolist() for k, v in qmeans.items()}})
    assert set(centred.query_means) == {0}
    asked = text(3, "q-en")
    got = centred.cosines(Query("?", "en", [asked]), 0, "sentence", range(6))
    pmeans = centring.passage_means(store.v, langs)
    expected = centring.centred_cosines(centring.centre_query(asked, qmeans, "en"), store.v,
                                        np.stack([pmeans[lang] for lang in langs]))
    assert int(np.argmax(got)) == 3
    searched = len(store.searched_k)
    hits = centred._dense(Query("?", "en", [text(3, "q-en")]), 0, "sentence", 2)
    assert hits[0][0] == 3 and len(hits) == 2 and hits[0][1] >= hits[1][1]
    if store_class is _Store:  # rows 0..n-1: every row centred once, an exact search
        assert centred._centred_table(0, "sentence") is not None and len(store.searched_k) == searched
    else:  # asked for more rows than it keeps, then ranked again
        assert centred._centred_table(0, "sentence") is None and store.searched_k[-1] == 2 * 4
    np.testing.assert_allclose(got, expected, atol=2e-3)  # the same cosines either way (float32)
    assert centred._dense(q, 0, "sentence", 0) == []


@pytest.mark.parametrize("means", [{"another-model": {"en": [0.0] * DIM}}, {"fake-16": {"en": [0.0] * (DIM + 1)}}, None])
def test_question_means_of_another_model_or_size_are_not_installed(means):
    store = _Store(np.eye(DIM, dtype=np.float32)[:3], ["fr", "fr", "en"])
    assert _retriever(store, means).query_means == {}


def test_question_means_round_trip_through_the_weights_file(tmp_path):
    w = scoring.load_weights(tmp_path / "none.json")
    w.query_means = {"fake-16": {"en": np.full(3, 0.25, np.float32), "fr": np.array([1.0, 0.0, -1.0])}}
    back = scoring.load_weights(scoring.save_weights(w, tmp_path / "w.json"))
    assert back.query_means == {"fake-16": {"en": [0.25, 0.25, 0.25], "fr": [1.0, 0.0, -1.0]}}
