"""The Milvus store: the index in Milvus collections instead of in each process (docs/milvus.md).

The same ``pymilvus`` code runs against milvus-lite (``SUMMIT_MILVUS_URI`` a file path ending in
``.db``, embedded in the process) and a Milvus server or cluster (``http(s)://host:19530``).

Collections of one *generation* (a full build), ``<prefix>_g<N>_<kind>``:

* ``chunks``: one row per passage: id, doc id, offsets, sentence ids, text, the vector of every
  encoder (``v0``, ``v1``, ...), ``lex`` (what Milvus' BM25 function analyses) and ``sparse``
  (the BM25 vector Milvus computes from it);
* ``sentences``: one row per sentence: id, doc id, offsets, chunk ids, previous / next sentence,
  entities and the ``anaphor`` flag of build-time annotation, text, the vector of every encoder;
* ``documents``: each document's cleaned text (in parts of at most 60 kB) and metadata, with the
  content hash the next build compares;
* ``vocab``: corpus words and their primary-encoder vectors (cross-lingual word matching);
* ``meta``: the manifest (fingerprint, counts, next ids, build id) and the term and word tables
  (document frequencies) of each build, as text blobs.

Plus ``<prefix>_control`` (the build lock) and the alias ``<prefix>_current``, which names the
``meta`` collection of the generation being served. A reader resolves that one alias, reads the
manifest, and from then on reads the concrete collections the manifest names: switching the alias
is atomic, so a reader never mixes two generations.

Updates within a generation are versioned: every row has ``born`` and ``died`` (build sequence
numbers) and a reader at build ``S`` sees ``born <= S and died > S``. An update writes the new rows
of changed documents (born ``S+1``), marks the replaced rows (died ``S+1``), and only then publishes
``S+1`` in the manifest: readers at ``S`` are unaffected until they switch, and rows are deleted
only once every replica has had ``milvus_grace_seconds`` to switch. A build that fails part-way
leaves ``S`` serving; the next build rolls its writes back first.

What a replica keeps in memory is bounded: the vocabulary (``milvus_vocab_max`` words and their
vectors), the idf table (12 bytes a term, hashed), LRU caches of records and vectors
(``milvus_cache_rows``, ``milvus_vector_cache_rows``) and the document list. Everything is
rebuilt from Milvus when a replica starts or switches build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import text as textmod
from .annotate import SentenceNotes, annotate
from .chunking import chunk_document
from .documents import Document
from .embedding import EncoderSet
from .errors import (
    BuildLockedError,
    DocumentError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    StoreUnavailableError,
    SummitError,
)
from .cache import LRU
from .index import (
    ChunkRecord,
    SentenceRecord,
    _document_key,
    check_compatible,
    code_latent_terms,
    embed_batches,
    corpus_dirs,
    IndexState,
    IndexStatus,
    documents_changed,
    latent_terms_setting,
    load_corpus,
    role_counts,
    role_table,
    settings_fingerprint,
)
from .settings import Settings

log = logging.getLogger("summit.milvus")
# pymilvus logs every failed RPC with a traceback; the store turns them into one-line errors.
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
logging.getLogger("milvus_lite.server_manager").setLevel(logging.CRITICAL)
logging.getLogger("milvus_lite").setLevel(logging.WARNING)  # in process: per-segment index chatter
logging.getLogger("grpc._server").setLevel(logging.CRITICAL)  # milvus-lite in process: query_iterator probes AllocTimestamp

MILVUS_FORMAT = 1
DIED_NEVER = 2**62
KINDS = ("chunks", "sentences", "documents", "vocab", "meta")
ANALYZER = {"tokenizer": "standard", "filter": ["lowercase", "asciifolding", {"type": "stemmer", "language": "french"}]}
BM25_PARAMS = {"bm25_k1": 1.2, "bm25_b": 0.75}  # = index.BM25_K1, BM25_B (candidate generation)
LEX_REPEAT = 8  # lexical query weights are quantised to 1/8 (a term repeated 1..8 times) for candidates
LEXICAL_OVERFETCH = 2  # BM25 candidates fetched from Milvus per passage asked for, then scored exactly
BM25_K1, BM25_B = 1.2, 0.75  # = index.BM25_K1, BM25_B
VARCHAR_MAX = 65_535
PART_BYTES = 60_000  # document text and table blobs are cut into parts of at most this many bytes
BATCH_ROWS = 1_000  # rows per insert / get
LOCK_TTL = 120.0  # a build lock with no heartbeat for this long is stale
BREAKER_SECONDS = 1.0  # after a connection failure, fail fast for this long
DOC_CACHE = 2_000


# ---- configuration -----------------------------------------------------------------------------


def resolve_uri(settings: Settings) -> tuple[str, str]:
    """("lite", absolute .db path) or ("server", URI), or a one-line SummitError."""
    uri = (settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")).strip()
    if re.match(r"^(https?|tcp|grpc)://", uri, re.I) or uri.startswith("unix:"):
        return "server", uri
    if "://" in uri:
        raise SummitError(f"SUMMIT_MILVUS_URI {uri!r} is neither a milvus-lite file (a path ending in .db) nor http(s)://host:port")
    if not uri.endswith(".db"):
        raise SummitError(f"SUMMIT_MILVUS_URI {uri!r}: a milvus-lite file path must end in .db (or give http(s)://host:19530)")
    return "lite", str(Path(uri).expanduser().resolve())


def collection_names(prefix: str, generation: int) -> dict[str, str]:
    return {kind: f"{prefix}_g{generation}_{kind}" for kind in KINDS}


def alias_name(prefix: str) -> str:
    return f"{prefix}_current"


def control_name(prefix: str) -> str:
    return f"{prefix}_control"


def milvus_fingerprint(settings: Settings, encoder_ids) -> dict:
    """What a Milvus build depends on: the FAISS fingerprint plus the Milvus-side choices."""
    return {
        **settings_fingerprint(settings, encoder_ids),
        "milvus_format": MILVUS_FORMAT,
        "bm25_input": settings.milvus_bm25_input,
        "milvus_index": settings.milvus_index,
    }


def check_milvus_compatible(manifest: dict, settings: Settings, encoder_ids) -> None:
    check_compatible(manifest, settings, encoder_ids)
    for key in ("milvus_format", "bm25_input", "milvus_index"):
        value = milvus_fingerprint(settings, encoder_ids)[key]
        if manifest.get(key) != value:
            raise IndexMismatchError(
                f"the Milvus index was built with {key}={manifest.get(key)!r} but the settings ask for {value!r}; "
                f"run `summit build` to rebuild it"
            )


def publish_delay(settings: Settings, kind: str) -> float:
    if settings.milvus_publish_delay is not None:
        return settings.milvus_publish_delay
    return 0.0 if kind == "lite" else 5.0


# ---- text helpers (pure) -----------------------------------------------------------------------

_NON_WORD = re.compile(r"\W+")


def lex_token(term: str) -> str:
    """An index term as one token every Milvus analyzer keeps whole: word characters only."""
    return _NON_WORD.sub("", term)


def lex_document(terms: Iterable[str]) -> str:
    """The ``lex`` field of a passage in "terms" mode: its index terms, space separated."""
    return " ".join(t for t in map(lex_token, terms) if t)


def repeats(weight: float) -> int:
    """How many times a term of this weight is written into a lexical query (1..LEX_REPEAT)."""
    return max(1, min(LEX_REPEAT, int(round(weight * LEX_REPEAT))))


def lexical_query_text(terms: dict[str, float], surface: dict[str, str] | None = None) -> str:
    """The BM25 query text for weighted index terms. Milvus scores a query token once per
    occurrence, so a term of weight w is repeated round(LEX_REPEAT * w) times (at least once):
    Milvus ranks by the FAISS store's score to 1/LEX_REPEAT of a weight (the candidates are then
    scored exactly, MilvusStore.lexical). ``surface`` maps a term to a word to write instead
    (raw-text mode: Milvus' analyzer then makes the term itself)."""
    parts = []
    for term, weight in sorted(terms.items()):
        if weight <= 0:
            continue
        token = surface.get(term, term) if surface is not None else lex_token(term)
        if token:
            parts += [token] * repeats(weight)
    return " ".join(parts)


def term_hash(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")


def word_id(word: str) -> int:
    """The vocabulary collection's primary key of a word (signed 64-bit)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def split_utf8(text: str, limit: int = PART_BYTES) -> list[str]:
    """Cut text into parts of at most ``limit`` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    parts, start = [], 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start = end
    return parts or [""]


def filter_literal(value: str) -> str:
    """A Milvus filter-expression string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lines_blobs(lines: Iterable[str], limit: int = PART_BYTES) -> list[str]:
    blobs, current, size = [], [], 0
    for line in lines:
        n = len(line.encode("utf-8")) + 1
        if current and size + n > limit:
            blobs.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += n
    if current:
        blobs.append("\n".join(current))
    return blobs


# ---- the connection ----------------------------------------------------------------------------


def _lite_locked(path: str) -> bool:
    """Whether another process holds this milvus-lite data directory."""
    lock = Path(path) / "LOCK"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _error_text(exc: BaseException) -> str:
    msg = getattr(exc, "message", None)
    if not msg and hasattr(exc, "details"):
        try:
            msg = exc.details()
        except Exception:  # noqa: BLE001
            msg = None
    return " ".join(str(msg or exc or type(exc).__name__).split())[:300]


_CONNECTION = re.compile(r"fail connecting|unavailable|connection refused|deadline|timed? ?out|socket closed|"
                         r"connection reset|failed to connect|channel|not ready|retry timeout|Retry run out", re.I)
_NOT_LOADED = re.compile(r"released|not loaded|call load\(\)", re.I)
_MISSING = re.compile(r"collection.*(not found|not exist|doesn't exist)|can't find collection|CollectionNotFound", re.I)
_ABSENT = re.compile(r"not found|not exist", re.I)  # pymilvus' words for an unknown alias or collection


class Connection:
    """One MilvusClient shared by a process's stores and builds: a timeout on every call, every
    failure turned into a one-line StoreUnavailableError, a short circuit breaker while the
    server is unreachable (requests fail fast instead of piling up), and collections loaded
    again after a server restart (milvus-lite does not reload them by itself)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.kind, self.uri = resolve_uri(settings)
        self.timeout = settings.milvus_timeout
        self._client = None
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_reason = ""

    @property
    def where(self) -> str:
        return f"milvus-lite file {self.uri}" if self.kind == "lite" else f"Milvus at {self.uri}"

    def _unavailable(self, exc: BaseException | str) -> StoreUnavailableError:
        reason = exc if isinstance(exc, str) else _error_text(exc)
        return StoreUnavailableError(f"{self.where} is unreachable ({reason}); start it or fix SUMMIT_MILVUS_URI",
                                     absent=bool(_ABSENT.search(reason)))

    def client(self):
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self):
        try:
            from pymilvus import MilvusClient
        except ImportError:  # pragma: no cover - a dependency
            raise SummitError("the milvus store needs pymilvus and milvus-lite (pip install pymilvus milvus-lite)") from None
        # pymilvus configures its own loggers on import and logs every failed call with a
        # traceback; the store reports failures itself, in one line.
        for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        if self.kind == "lite":
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            if _lite_locked(self.uri):
                raise StoreUnavailableError(
                    f"milvus-lite file {self.uri} is in use by another process (a .db URI serves one process; for several, "
                    f"run `python -m milvus_lite server --data-dir {self.uri}` and set SUMMIT_MILVUS_URI=http://127.0.0.1:19530)"
                )
        try:
            return MilvusClient(uri=self.uri, token=self.settings.milvus_token or "", db_name=self.settings.milvus_database,
                                timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - pymilvus raises several kinds
            raise self._unavailable(exc) from None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
            if self.kind == "lite":
                try:
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(self.uri)
                except Exception:  # noqa: BLE001
                    pass

    def call(self, method: str, *args, **kwargs):
        """client.<method>(*args, **kwargs) with the timeout; StoreUnavailableError on failure."""
        now = time.monotonic()
        if now < self._down_until:
            raise self._unavailable(self._down_reason)
        client = self.client()
        kwargs.setdefault("timeout", self.timeout)
        collection = args[0] if args and isinstance(args[0], str) else kwargs.get("collection_name")
        for attempt in range(2):
            try:
                return getattr(client, method)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                text = _error_text(exc)
                if attempt == 0 and collection and _NOT_LOADED.search(text):
                    try:
                        client.load_collection(collection, timeout=self.timeout)
                        continue
                    except Exception as again:  # noqa: BLE001
                        text = _error_text(again)
                if _MISSING.search(text):
                    raise StoreUnavailableError(f"{self.where}: collection {collection} is gone ({text}); a newer build "
                                                "replaced it, the server switches to it", retry_after=2, absent=True) from None
                if _CONNECTION.search(text) or type(exc).__name__ in ("_InactiveRpcError", "RpcError"):
                    self._down_until = time.monotonic() + BREAKER_SECONDS
                    self._down_reason = text
                    raise self._unavailable(text) from None
                raise StoreUnavailableError(f"{self.where}: {method} failed ({text})", absent=bool(_ABSENT.search(text))) from None
        raise StoreUnavailableError(f"{self.where}: {method} failed")  # pragma: no cover

    def ok(self) -> None:
        """Raise StoreUnavailableError unless the server answers."""
        self.call("list_collections")


# ---- schemas -----------------------------------------------------------------------------------


def _dense_index(settings: Settings, n: int) -> tuple[str, dict]:
    kind = settings.milvus_index
    if kind == "auto":
        kind = "HNSW" if n >= settings.hnsw_threshold else "FLAT"
    if kind in ("HNSW", "HNSW_SQ"):
        params = {"M": 32, "efConstruction": 80}
        if kind == "HNSW_SQ":
            params["sq_type"] = "FP16"
        return kind, params
    if kind in ("IVF_FLAT", "IVF_SQ8"):
        return kind, {"nlist": int(max(16, min(65_536, 4 * math.sqrt(max(n, 1)))))}
    return kind, {}


def search_params(index_type: str, n: int) -> dict:
    """Search breadth as the FAISS store's (index.make_faiss_index): wider for bigger corpora."""
    if index_type.startswith("HNSW"):
        return {"metric_type": "IP", "params": {"ef": 128 if n <= 50_000 else 256 if n <= 250_000 else 512 if n <= 1_000_000 else 1024}}
    if index_type.startswith("IVF"):
        nlist = int(max(16, min(65_536, 4 * math.sqrt(max(n, 1)))))
        return {"metric_type": "IP", "params": {"nprobe": max(8, nlist // 16)}}
    if index_type == "DISKANN":
        return {"metric_type": "IP", "params": {"search_list": 100}}
    return {"metric_type": "IP", "params": {}}


def _create(conn: Connection, name: str, fields: list[tuple], *, index: list[tuple], functions=()) -> None:
    from pymilvus import DataType, Function, FunctionType

    client = conn.client()
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for fname, ftype, kwargs in fields:
        schema.add_field(fname, getattr(DataType, ftype), **kwargs)
    for fname, inp, out in functions:
        schema.add_function(Function(name=fname, function_type=FunctionType.BM25, input_field_names=[inp], output_field_names=[out]))
    params = client.prepare_index_params()
    for fname, itype, metric, iparams in index:
        kwargs = {"index_type": itype}
        if metric:
            kwargs["metric_type"] = metric
        if iparams:
            # Milvus takes build parameters flattened; milvus-lite reads them only from a
            # JSON "params" entry (and silently ignores flattened ones: BM25 k1 would be 1.5).
            kwargs["params"] = {"params": dict(iparams)} if conn.kind == "lite" else dict(iparams)
        params.add_index(fname, **kwargs)
    conn.call("create_collection", name, schema=schema, index_params=params, consistency_level="Bounded")


def _small_table(conn: Connection, name: str) -> None:
    """A key -> text table (manifest, blobs, lock). Milvus wants a vector field in every
    collection: a 2-d placeholder."""
    _create(conn, name, [
        ("key", "VARCHAR", {"is_primary": True, "max_length": 512}),
        ("seq", "INT64", {}),
        ("value", "VARCHAR", {"max_length": VARCHAR_MAX}),
        ("_v", "FLOAT_VECTOR", {"dim": 2}),
    ], index=[("_v", "FLAT", "IP", None)])


def create_generation(conn: Connection, settings: Settings, names: dict[str, str], dims: list[int],
                      n_chunks: int, n_sentences: int) -> dict:
    """The five collections of a generation; returns the dense index types chosen."""
    vec_fields = [(f"v{i}", "FLOAT_VECTOR", {"dim": d}) for i, d in enumerate(dims)]
    chunk_type, chunk_params = _dense_index(settings, n_chunks)
    sent_type, sent_params = _dense_index(settings, n_sentences)
    common = [
        ("id", "INT64", {"is_primary": True}),
        ("born", "INT64", {}),
        ("died", "INT64", {}),
        ("doc_id", "VARCHAR", {"max_length": 1024}),
        ("start", "INT64", {}),
        ("end", "INT64", {}),
    ]
    scalar_index = [("born", "INVERTED", None, None), ("died", "INVERTED", None, None)]
    _create(conn, names["chunks"], [
        *common,
        ("chunk_key", "VARCHAR", {"max_length": 1024}),
        ("lang", "VARCHAR", {"max_length": 16}),
        ("sentence_ids", "JSON", {}),
        ("text", "VARCHAR", {"max_length": VARCHAR_MAX}),
        ("lex", "VARCHAR", {"max_length": VARCHAR_MAX, "enable_analyzer": True, "analyzer_params": ANALYZER}),
        ("sparse", "SPARSE_FLOAT_VECTOR", {}),
        *vec_fields,
    ], index=[*[(f"v{i}", chunk_type, "IP", chunk_params) for i in range(len(dims))],
              ("sparse", "SPARSE_INVERTED_INDEX", "BM25", BM25_PARAMS), *scalar_index],
        functions=[("bm25", "lex", "sparse")])
    _create(conn, names["sentences"], [
        *common,
        ("prev", "INT64", {}),
        ("next", "INT64", {}),
        ("chunk_ids", "JSON", {}),
        ("entities", "JSON", {}),
        ("anaphor", "BOOL", {}),
        ("text", "VARCHAR", {"max_length": VARCHAR_MAX}),
        ("latent", "JSON", {}),  # latent-term code {"i": ids, "v": weights}, {} when the build has none
        *vec_fields,
    ], index=[*[(f"v{i}", sent_type, "IP", sent_params) for i in range(len(dims))], *scalar_index])
    _create(conn, names["documents"], [
        ("key", "VARCHAR", {"is_primary": True, "max_length": 2048}),
        ("doc_id", "VARCHAR", {"max_length": 1024}),
        ("born", "INT64", {}),
        ("died", "INT64", {}),
        ("part", "INT64", {}),
        ("text", "VARCHAR", {"max_length": VARCHAR_MAX}),
        ("meta", "JSON", {}),
        ("_v", "FLOAT_VECTOR", {"dim": 2}),
    ], index=[("_v", "FLAT", "IP", None), *scalar_index])
    _create(conn, names["vocab"], [
        ("id", "INT64", {"is_primary": True}),  # word_id(word): string keys break pymilvus' get ("aujourd'hui")
        ("word", "VARCHAR", {"max_length": 1024}),
        ("term", "VARCHAR", {"max_length": 1024}),
        ("v", "FLOAT_VECTOR", {"dim": dims[0]}),
    ], index=[("v", "FLAT", "IP", None)])
    _small_table(conn, names["meta"])
    return {"chunks": chunk_type, "sentences": sent_type}


# ---- manifest and tables -----------------------------------------------------------------------


def read_manifest(conn: Connection, prefix: str) -> dict | None:
    """The published manifest (through the alias), or None when there is no index."""
    try:
        rows = conn.call("query", alias_name(prefix), filter='key == "manifest"', output_fields=["value"],
                         consistency_level="Strong")
    except StoreUnavailableError as exc:
        if exc.absent:  # no alias (nothing published yet) or its collection was dropped
            return None
        raise
    if not rows:
        return None
    try:
        manifest = json.loads(rows[0]["value"])
    except (ValueError, KeyError, TypeError):
        raise IndexCorruptError(f"the Milvus index manifest (prefix {prefix}) is not valid JSON; run `summit build --force`") from None
    if not isinstance(manifest, dict) or manifest.get("milvus_format") is None:
        raise IndexCorruptError(f"the Milvus index manifest (prefix {prefix}) is not a summit manifest; run `summit build --force`")
    return manifest


def published_build_id(conn: Connection, prefix: str) -> str | None:
    manifest = read_manifest(conn, prefix)
    return None if manifest is None else manifest.get("build_id")


def _read_blobs(conn: Connection, meta: str, name: str, seq: int, n: int) -> list[str]:
    keys = [f"{name}/{seq}/{i}" for i in range(n)]
    found: dict[str, str] = {}
    for i in range(0, len(keys), 100):
        part = keys[i : i + 100]
        for row in conn.call("get", meta, ids=part, output_fields=["value"], consistency_level="Strong"):
            found[row["key"]] = row["value"]
    missing = [k for k in keys if k not in found]
    if missing:
        raise StoreUnavailableError(f"the Milvus index table {missing[0]} is missing (a newer build replaced it); retrying", retry_after=2)
    return [found[k] for k in keys]


def _read_blob(conn: Connection, meta: str, name: str, seq: int, i: int) -> list[str]:
    key = f"{name}/{seq}/{i}"
    rows = conn.call("get", meta, ids=[key], output_fields=["value"], consistency_level="Strong")
    if not rows:
        raise StoreUnavailableError(f"the Milvus index table {key} is missing (a newer build replaced it); retrying", retry_after=2)
    return [rows[0]["value"]]


def _write_blobs(conn: Connection, meta: str, name: str, seq: int, blobs: list[str]) -> None:
    rows = [{"key": f"{name}/{seq}/{i}", "seq": seq, "value": b, "_v": [0.0, 0.0]} for i, b in enumerate(blobs)]
    for i in range(0, len(rows), 50):
        conn.call("upsert", meta, rows[i : i + 50])


def parse_terms(blobs: list[str]) -> dict[str, int]:
    out = {}
    for blob in blobs:
        for line in blob.split("\n"):
            if line:
                term, df = line.rsplit("\t", 1)
                out[term] = int(df)
    return out


def parse_words(blobs: list[str]) -> dict[str, tuple[str, int]]:
    out = {}
    for blob in blobs:
        for line in blob.split("\n"):
            if line:
                word, term, df = line.split("\t")
                out[word] = (term, int(df))
    return out


@dataclass
class IdfTable:
    """idf of every index term in 12 bytes a term: sorted 64-bit hashes and float32 idf."""

    hashes: np.ndarray
    idf: np.ndarray

    @classmethod
    def from_df(cls, df: dict[str, int], n_chunks: int) -> "IdfTable":
        if not df:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.float32))
        hashes = np.fromiter((term_hash(t) for t in df), dtype=np.uint64, count=len(df))
        counts = np.fromiter(df.values(), dtype=np.float32, count=len(df))
        idf = np.log1p((n_chunks - counts + 0.5) / (counts + 0.5)).astype(np.float32)  # = index.build_lexical
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], idf[order])

    def get(self, term: str) -> float | None:
        if not len(self.hashes):
            return None
        h = np.uint64(term_hash(term))
        i = int(np.searchsorted(self.hashes, h))
        if i < len(self.hashes) and self.hashes[i] == h:
            return float(self.idf[i])
        return None

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.idf.nbytes)


def _read_vocabulary(conn: Connection, meta: str, seq: int, n_blobs: int, terms: dict, cap: int) -> list[tuple[str, str]]:
    """The ``cap`` most frequent words (blobs are written most frequent first: only as many are
    read and parsed as the cap needs), then top_words' order."""
    words: dict[str, tuple[str, int]] = {}
    kept = 0
    for i in range(n_blobs):
        part = parse_words(_read_blob(conn, meta, "words", seq, i))
        for w, (t, df) in part.items():
            words[w] = (t, df)
            kept += t in terms
        if kept >= cap:
            break
    return top_words(words, terms, cap)


def top_words(words: dict[str, tuple[str, int]], terms: dict[str, int], cap: int) -> list[tuple[str, str]]:
    """The vocabulary a replica loads: words whose term is in the corpus, the ``cap`` most
    frequent (document frequency), in alphabetical order as the FAISS store's."""
    pairs = [(w, t, df) for w, (t, df) in words.items() if t in terms]
    if len(pairs) > cap:
        pairs.sort(key=lambda p: (-p[2], p[0]))
        pairs = pairs[:cap]
    return sorted(((w, t) for w, t, _ in pairs))


# ---- the store (reader) ------------------------------------------------------------------------


@dataclass
class _Shared:
    """Caches valid for every build of one generation (rows never change once written; a
    newer build only adds rows and retires others), handed from a store to its successor."""

    generation: int
    records: dict[str, LRU]
    vectors: dict[str, LRU]
    word_vectors: dict[str, np.ndarray] = field(default_factory=dict)


CHUNK_FIELDS = ["id", "doc_id", "chunk_key", "start", "end", "sentence_ids", "text", "lang"]
SENTENCE_FIELDS = ["id", "doc_id", "start", "end", "prev", "next", "chunk_ids", "entities", "anaphor", "text"]


def _chunk_record(e: dict) -> tuple[ChunkRecord, str, str]:
    return (ChunkRecord(e["chunk_key"], e["doc_id"], int(e["start"]), int(e["end"]), [int(s) for s in e["sentence_ids"]]),
            e["text"], e.get("lang") or "fr")


def _sentence_record(e: dict) -> tuple[SentenceRecord, str, int, int]:
    rec = SentenceRecord(e["doc_id"], int(e["start"]), int(e["end"]), [int(c) for c in e["chunk_ids"]],
                         tuple((int(a), int(b), str(lab)) for a, b, lab in (e.get("entities") or [])), bool(e["anaphor"]))
    return rec, e["text"], int(e["prev"]), int(e["next"])


class MilvusStore:
    """The ``store.Store`` interface over the collections of one published build.

    A store is pinned to one build (its collections and its sequence number): what it returns
    never changes, whatever a build does meanwhile. ``open_store`` makes the store of the build
    published now."""

    kind = "milvus"

    def __init__(self, conn: Connection, settings: Settings, manifest: dict, *, terms: IdfTable, vocab: list[str],
                 vocab_terms: list[str], vocab_vectors: np.ndarray, shared: _Shared, roles: dict | None = None):
        self.conn = conn
        self.settings = settings
        self.manifest = manifest
        self.names = manifest["collections"]
        self.seq = int(manifest["seq"])
        self._terms = terms
        self.vocab = vocab
        self.vocab_vectors = vocab_vectors
        self._vocab_terms = vocab_terms
        self._shared = shared
        self._roles = roles or {}
        self._docs = LRU(DOC_CACHE)
        self._doc_list: list[dict] | None = None
        self._pending: dict[str, set[int]] = {"chunk": set(), "sentence": set()}
        self._pending_lock = threading.Lock()
        self._surface: dict[str, str] | None = None
        self._tf = LRU(settings.milvus_cache_rows)
        self._avgdl = float(manifest.get("avgdl") or 1.0)
        dead = int(manifest.get("dead_rows", 0))
        self._live = f"born <= {self.seq} and died > {self.seq}" if dead else f"born <= {self.seq}"
        self._max_idf = float(terms.idf.max()) if len(terms.idf) else 1.0
        counts = manifest["counts"]
        types = manifest.get("index_types", {})
        self._search = {"chunk": search_params(types.get("chunks", "FLAT"), counts["chunks"]),
                        "sentence": search_params(types.get("sentences", "FLAT"), counts["sentences"])}

    # ---- identity ----
    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    @property
    def n_encoders(self) -> int:
        return len(self.manifest["encoders"])

    def counts(self) -> dict:
        c = self.manifest["counts"]
        return {"documents": c["documents"], "chunks": c["chunks"], "sentences": c["sentences"]}

    def memory(self) -> dict:
        """Bytes this store holds in memory, by table (docs/milvus.md)."""
        rec = {lvl: len(c) for lvl, c in self._shared.records.items()}
        vec = {lvl: len(c) for lvl, c in self._shared.vectors.items()}
        return {
            "vocab_words": len(self.vocab),
            "vocab_vectors_bytes": int(self.vocab_vectors.nbytes),
            "idf_table_bytes": self._terms.nbytes,
            "idf_terms": int(len(self._terms.hashes)),
            "cached_records": rec,
            "cached_vectors": vec,
            "document_list": 0 if self._doc_list is None else len(self._doc_list),
        }

    def _coll(self, level: str) -> str:
        return self.names["sentences" if level == "sentence" else "chunks"]

    # ---- records ----
    def _remember(self, level: str, entity: dict) -> None:
        rid = int(entity["id"])
        if level == "chunk":
            rec = _chunk_record(entity)
            self._shared.records["chunk"].put(rid, rec)
            with self._pending_lock:
                for s in rec[0].sentence_ids:
                    self._pending["sentence"].update((s - 1, s, s + 1))
        else:
            rec = _sentence_record(entity)
            self._shared.records["sentence"].put(rid, rec)
            with self._pending_lock:
                self._pending["chunk"].update(rec[0].chunk_ids)
                self._pending["sentence"].update(i for i in (rec[2], rec[3]) if i >= 0)

    def _fetch(self, level: str, rid: int):
        """A record not in the cache: fetched with the ids search results made likely (their
        sentences, chunks and neighbours) and the ids just after it (read-ahead for scans)."""
        cache = self._shared.records[level]
        with self._pending_lock:
            wanted = {i for i in self._pending[level] if i >= 0 and i not in cache}
            self._pending[level].clear()
        wanted.add(rid)
        lo, hi = rid, rid + 64
        fields = CHUNK_FIELDS if level == "chunk" else SENTENCE_FIELDS
        ids = sorted(wanted | set(range(lo, hi)))
        got = None
        for i in range(0, len(ids), 2 * BATCH_ROWS):
            part = ids[i : i + 2 * BATCH_ROWS]
            expr = f"id in [{','.join(map(str, part))}]"
            for row in self.conn.call("query", self._coll(level), filter=expr, output_fields=fields):
                self._remember(level, row)
                if int(row["id"]) == rid:
                    got = (_chunk_record if level == "chunk" else _sentence_record)(row)
        if got is None:
            raise StoreUnavailableError(f"the index changed while answering ({level} {rid} is gone); retry", retry_after=1)
        return got

    def _record(self, level: str, rid: int):
        got = self._shared.records[level].get(int(rid))
        return got if got is not None else self._fetch(level, int(rid))

    def chunk(self, cid: int) -> ChunkRecord:
        return self._record("chunk", cid)[0]

    def sentence(self, sid: int) -> SentenceRecord:
        return self._record("sentence", sid)[0]

    def chunk_text(self, cid: int) -> str:
        return self._record("chunk", cid)[1]

    def sentence_text(self, sid: int) -> str:
        return self._record("sentence", sid)[1]

    def previous_sentence(self, sid: int) -> int | None:
        prev = self._record("sentence", sid)[2]
        return None if prev < 0 else prev

    def next_sentence(self, sid: int) -> int | None:
        nxt = self._record("sentence", sid)[3]
        return None if nxt < 0 else nxt

    def ids(self, level: str) -> Iterator[int]:
        """Every live id of a level, in increasing order within each batch."""
        fields = CHUNK_FIELDS if level == "chunk" else SENTENCE_FIELDS
        it = self.conn.call("query_iterator", self._coll(level), batch_size=2000, filter=self._live, output_fields=fields)
        try:
            while True:
                try:
                    batch = it.next()
                except Exception as exc:  # noqa: BLE001
                    raise self.conn._unavailable(exc) from None
                if not batch:
                    break
                for row in sorted(batch, key=lambda r: int(r["id"])):
                    self._remember(level, row)
                    yield int(row["id"])
        finally:
            try:
                it.close()
            except Exception:  # noqa: BLE001
                pass

    def document(self, doc_id: str) -> dict | None:
        if not isinstance(doc_id, str) or not doc_id or len(doc_id) > 1000 or any(ord(c) < 32 for c in doc_id):
            return None
        cached = self._docs.get(doc_id)
        if cached is not None:
            return cached or None
        rows = self.conn.call("query", self.names["documents"], filter=f"doc_id == {filter_literal(doc_id)} and {self._live}",
                              output_fields=["part", "text", "meta"])
        if not rows:
            self._docs.put(doc_id, {})
            return None
        rows.sort(key=lambda r: int(r["part"]))
        meta = rows[0]["meta"]
        doc = {k: meta.get(k) for k in ("doc_id", "title", "source", "url", "published", "language")}
        doc.update({"text": "".join(r["text"] for r in rows), "path": meta.get("path"), "sha256": meta.get("sha256"),
                    "chunks": int(meta.get("nc", 0))})
        self._docs.put(doc_id, doc)
        return doc

    def document_list(self) -> list[dict]:
        if self._doc_list is None:
            out = []
            it = self.conn.call("query_iterator", self.names["documents"], batch_size=2000,
                                filter=f"part == 0 and {self._live}", output_fields=["meta"])
            try:
                while True:
                    try:
                        batch = it.next()
                    except Exception as exc:  # noqa: BLE001
                        raise self.conn._unavailable(exc) from None
                    if not batch:
                        break
                    out += [r["meta"] for r in batch]
            finally:
                try:
                    it.close()
                except Exception:  # noqa: BLE001
                    pass
            out.sort(key=lambda m: (int(m.get("folder", 0)), str(m.get("name", "")), str(m.get("doc_id"))))
            self._doc_list = [{k: m.get(k) for k in ("doc_id", "title", "source", "url", "published", "language")} for m in out]
        return self._doc_list

    # ---- search ----
    def _hit_fields(self, level: str, n: int) -> list[str]:
        """What a search returns per hit: the whole record, so that reading it costs no second
        call, unless the cache already holds a record for every row (a small corpus after
        warm-up): then ids only, which makes the search cheaper (a missing one is fetched)."""
        if len(self._shared.records[level]) >= n:
            return ["id"]
        return CHUNK_FIELDS if level == "chunk" else SENTENCE_FIELDS

    def dense(self, encoder: int, level: str, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        n = self.counts()["sentences" if level == "sentence" else "chunks"]
        k = min(int(k), n, 16_384)
        if k <= 0:
            return []
        fields = self._hit_fields(level, n)
        res = self.conn.call("search", self._coll(level), data=[np.asarray(vector, dtype=np.float32).tolist()],
                             anns_field=f"v{encoder}", limit=k, filter=self._live, output_fields=fields,
                             search_params=self._search[level])
        out = []
        for hit in res[0] if res else []:
            entity = dict(hit.get("entity") or {})
            if len(entity) > 1:
                entity["id"] = hit["id"]
                self._remember(level, entity)
            out.append((int(hit["id"]), float(hit["distance"])))
        out.sort(key=lambda p: -p[1])
        return out

    def latent_scores(self, sids, code: np.ndarray | None) -> np.ndarray | None:
        """Cosine of each sentence's latent terms with ``code`` (index.LoadedIndex.latent_scores),
        or None when this build has none."""
        if code is None or not self.manifest.get("latent_terms"):
            return None
        sids = [int(i) for i in sids]
        cache = self._shared.vectors["latent"]
        missing = [i for i in dict.fromkeys(sids) if cache.get(i) is None]
        for j in range(0, len(missing), BATCH_ROWS):
            part = missing[j : j + BATCH_ROWS]
            for row in self.conn.call("get", self._coll("sentence"), ids=part, output_fields=["latent"]):
                got = _latent_from_row(row.get("latent"))
                cache.put(int(row["id"]), got if got is not None else (np.zeros(0, np.int32), np.zeros(0, np.float32)))
        out = np.zeros(len(sids))
        for r, i in enumerate(sids):
            got = cache.get(i)
            if got is None:
                raise StoreUnavailableError(f"the index changed while answering (sentence {i} is gone); retry", retry_after=1)
            ids, weights = got
            keep = ids < code.shape[0]
            out[r] = float(weights[keep] @ code[ids[keep]])
        return out

    def vectors(self, encoder: int, level: str, ids) -> np.ndarray:
        ids = [int(i) for i in ids]
        cache = self._shared.vectors[level]
        dim = self.manifest["dimensions"][encoder]
        missing = [i for i in dict.fromkeys(ids) if cache.get(i) is None]
        fields = [f"v{e}" for e in range(self.n_encoders)]
        for j in range(0, len(missing), BATCH_ROWS):
            part = missing[j : j + BATCH_ROWS]
            for row in self.conn.call("get", self._coll(level), ids=part, output_fields=fields):
                cache.put(int(row["id"]), [np.asarray(row[f], dtype=np.float32) for f in fields])
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for r, i in enumerate(ids):
            got = cache.get(i)
            if got is None:
                raise StoreUnavailableError(f"the index changed while answering ({level} {i} is gone); retry", retry_after=1)
            out[r] = got[encoder]
        return out

    def _surface_words(self) -> dict[str, str]:
        """Raw-text mode: a corpus word for each term of the loaded vocabulary."""
        if self._surface is None:
            surface: dict[str, str] = {}
            for w, t in zip(self.vocab, self._vocab_terms):
                surface.setdefault(t, w)
            self._surface = surface
        return self._surface

    def _chunk_tf(self, cid: int) -> tuple[Counter, int]:
        got = self._tf.get(cid)
        if got is None:
            rec = self._record("chunk", cid)
            terms = textmod.terms(rec[1], rec[2])
            got = (Counter(terms), max(len(terms), 1))
            self._tf.put(cid, got)
        return got

    def lexical(self, terms: dict[str, float], k: int, words: list[str] | None = None) -> list[tuple[int, float]]:
        """BM25 over passages: Milvus' BM25 index finds the candidates (the query repeats each
        term in proportion to its weight, see lexical_query_text), then the top candidates are
        scored again exactly as the FAISS store scores them (index.build_lexical: our stems, our
        idf table, k1 1.2, b 0.75). The ranking then does not depend on Milvus' analyzer (which
        milvus-lite does not implement: it neither folds nor stems), on its per-segment idf, or
        on the weights' quantisation; LEXICAL_OVERFETCH says how deep the candidates go."""
        if self.manifest.get("bm25_input") == "text":
            surface = dict(self._surface_words())
            for w in words or ():
                for lang in ("fr", "en"):
                    surface[textmod.stem(w, lang)] = w
            query = lexical_query_text(terms, surface)
        else:
            query = lexical_query_text(terms)
        n = self.counts()["chunks"]
        k = min(int(k), n, 16_384)
        if not query or k <= 0:
            return []
        depth = min(n, 16_384, max(LEXICAL_OVERFETCH * k, k + 30))
        res = self.conn.call("search", self.names["chunks"], data=[query], anns_field="sparse", limit=depth, filter=self._live,
                             output_fields=self._hit_fields("chunk", n), search_params={"metric_type": "BM25", "params": {}})
        candidates = []
        for hit in res[0] if res else []:
            if abs(float(hit["distance"])) <= 0:  # milvus-lite reports -score, Milvus +score
                continue
            entity = dict(hit.get("entity") or {})
            if len(entity) > 1:
                entity["id"] = hit["id"]
                self._remember("chunk", entity)
            candidates.append(int(hit["id"]))
        if not candidates:
            return []
        names = [t for t in terms if terms[t] > 0 and self._terms.get(t) is not None]
        if not names:
            return []
        idf = np.array([self._terms.get(t) for t in names], dtype=np.float32)
        w = np.array([terms[t] for t in names], dtype=np.float32)
        tf = np.zeros((len(names), len(candidates)), dtype=np.float32)
        lengths = np.zeros(len(candidates), dtype=np.float32)
        for j, cid in enumerate(candidates):
            counts, length = self._chunk_tf(cid)
            lengths[j] = length
            for i, t in enumerate(names):
                tf[i, j] = counts.get(t, 0)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / self._avgdl)
        weights = np.where(tf > 0, idf[:, None] * tf * (BM25_K1 + 1) / (tf + norm[None, :]), 0).astype(np.float32)
        scores = w @ weights
        out = [(cid, float(sc)) for cid, sc in zip(candidates, scores) if sc > 0]
        out.sort(key=lambda p: (-p[1], p[0]))
        return out[:k]

    # ---- lexical side tables ----
    def term_idf(self, term: str) -> float | None:
        return self._terms.get(term)

    @property
    def max_idf(self) -> float:
        return self._max_idf

    def term_of(self, vocab_row: int) -> str:
        return self._vocab_terms[vocab_row]

    def roles(self, term: str) -> dict[str, int]:
        """How often word ``term`` stands beside a person, an organisation, a place name
        (index.role_types, summed over the documents by the build)."""
        return self._roles.get(term, {})

    def centroid(self, encoder: int) -> np.ndarray:
        """The corpus's mean sentence direction for an encoder (Retriever.centroid), kept by the
        build as a running sum: exact, and no scan of the sentences."""
        sums = self.manifest.get("centroid_sums")
        if not sums:
            return np.zeros(self.manifest["dimensions"][encoder], np.float32)
        v = np.asarray(sums[encoder], dtype=np.float64)
        return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def _new_shared(settings: Settings, generation: int) -> _Shared:
    return _Shared(generation,
                   {"chunk": LRU(settings.milvus_cache_rows), "sentence": LRU(settings.milvus_cache_rows)},
                   {"chunk": LRU(settings.milvus_vector_cache_rows), "sentence": LRU(settings.milvus_vector_cache_rows),
                    "latent": LRU(settings.milvus_vector_cache_rows)})


def open_store(conn: Connection, settings: Settings, encoder_ids=None, previous: MilvusStore | None = None,
               manifest: dict | None = None) -> MilvusStore:
    """The store of the build published now (IndexMissingError when there is none;
    IndexMismatchError when it was built with other models or settings)."""
    prefix = settings.milvus_prefix
    manifest = manifest or read_manifest(conn, prefix)
    if manifest is None:
        raise IndexMissingError(f"no index in {conn.where} (prefix {prefix}); run `summit build`")
    if encoder_ids is not None:
        check_milvus_compatible(manifest, settings, encoder_ids)
    seq, meta = int(manifest["seq"]), manifest["collections"]["meta"]
    blobs = manifest.get("blobs", {})
    df = parse_terms(_read_blobs(conn, meta, "terms", seq, int(blobs.get("terms", 0))))
    terms = IdfTable.from_df(df, int(manifest["counts"]["chunks"]))
    roles = parse_roles(_read_blobs(conn, meta, "roles", seq, int(blobs.get("roles", 0))))
    vocab_pairs = _read_vocabulary(conn, meta, seq, int(blobs.get("words", 0)), df, settings.milvus_vocab_max)
    del df
    shared = previous._shared if previous is not None and previous.generation == int(manifest["generation"]) else None
    shared = shared or _new_shared(settings, int(manifest["generation"]))
    known = shared.word_vectors
    need = [w for w, _ in vocab_pairs if w not in known]
    vocab_coll = manifest["collections"]["vocab"]
    for i in range(0, len(need), BATCH_ROWS):
        for row in conn.call("get", vocab_coll, ids=[word_id(w) for w in need[i : i + BATCH_ROWS]], output_fields=["word", "v"]):
            known[row["word"]] = np.asarray(row["v"], dtype=np.float32)
    missing = [w for w, _ in vocab_pairs if w not in known]
    if missing:  # cannot happen with our builds; a word without a vector is simply not matched
        log.warning("the Milvus vocabulary lacks vectors for %d words (e.g. %r)", len(missing), missing[0])
        vocab_pairs = [(w, t) for w, t in vocab_pairs if w in known]
    dim0 = int(manifest["dimensions"][0])
    vocab = [w for w, _ in vocab_pairs]
    vectors = np.stack([known[w] for w in vocab]).astype(np.float32) if vocab else np.zeros((0, dim0), np.float32)
    # Only the loaded vocabulary stays in memory.
    shared.word_vectors = {w: known[w] for w in vocab}
    return MilvusStore(conn, settings, manifest, terms=terms, vocab=vocab, vocab_terms=[t for _, t in vocab_pairs],
                       vocab_vectors=vectors, shared=shared, roles=roles)


# ---- the build lock ----------------------------------------------------------------------------


class BuildLock:
    """One build at a time per prefix, whichever machine runs it: a row in <prefix>_control
    with an owner token and a heartbeat. Taking it: refuse when a live lock of another owner is
    there, write ours, wait a moment, read it back (a racing builder's write wins; the loser
    sees it and refuses). A lock whose heartbeat is older than LOCK_TTL is stale and taken."""

    KEY = "build-lock"

    def __init__(self, conn: Connection, prefix: str, settle: float | None = None):
        self.conn = conn
        self.table = control_name(prefix)
        self.owner = uuid.uuid4().hex
        self.settle = (0.05 if conn.kind == "lite" else 1.0) if settle is None else settle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.info = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(),
                     "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def _read(self) -> dict | None:
        rows = self.conn.call("get", self.table, ids=[self.KEY], output_fields=["value"], consistency_level="Strong")
        if not rows:
            return None
        try:
            return json.loads(rows[0]["value"])
        except ValueError:
            return None

    def _write(self) -> None:
        value = json.dumps({**self.info, "heartbeat": time.time()})
        self.conn.call("upsert", self.table, [{"key": self.KEY, "seq": 0, "value": value, "_v": [0.0, 0.0]}])

    def check_free(self) -> None:
        """Refuse now (before loading models) when another live build holds the lock."""
        if not self.conn.call("has_collection", self.table):
            return
        held = self._read()
        if held and held.get("owner") != self.owner and time.time() - float(held.get("heartbeat", 0)) < LOCK_TTL:
            raise self._refuse(held)

    def _refuse(self, held: dict) -> BuildLockedError:
        return BuildLockedError(
            f"another build of this Milvus index is running (host {held.get('host')}, pid {held.get('pid')}, since "
            f"{held.get('since')}); wait for it to finish, or retry after {int(LOCK_TTL)} s if it died"
        )

    def __enter__(self) -> "BuildLock":
        if not self.conn.call("has_collection", self.table):
            _small_table(self.conn, self.table)
        held = self._read()
        if held and held.get("owner") != self.owner and time.time() - float(held.get("heartbeat", 0)) < LOCK_TTL:
            raise self._refuse(held)
        self._write()
        time.sleep(self.settle)
        held = self._read()
        if not held or held.get("owner") != self.owner:
            raise self._refuse(held or {})
        self._thread = threading.Thread(target=self._beat, name="milvus-build-lock", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(LOCK_TTL / 4):
            try:
                held = self._read()
                if held and held.get("owner") == self.owner:
                    self._write()
            except SummitError as exc:
                log.warning("build lock heartbeat failed: %s", exc)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            held = self._read()
            if held and held.get("owner") == self.owner:
                self.conn.call("delete", self.table, ids=[self.KEY])
        except SummitError as err:
            log.warning("could not release the build lock (it expires in %d s): %s", LOCK_TTL, err)


# ---- building ----------------------------------------------------------------------------------

Progress = Callable[[str, int, int], None]


@dataclass
class _Prepared:
    """One document cut into passages and sentences, ids local to the document."""

    doc: Document
    folder: int
    key: str
    chunks: list[ChunkRecord]  # sentence_ids local
    sentences: list[SentenceRecord]  # chunk_ids local
    chunk_terms: list[list[str]]
    words: dict[str, str]  # vocabulary words of the document -> term
    forms: dict[str, Counter] = field(default_factory=dict)  # word -> how it is written (index.vocabulary_forms)
    roles: dict[str, dict[str, int]] = field(default_factory=dict)  # raw index.role_types counts, once annotated


def prepare(doc: Document, settings: Settings, folder: int = 0, key: str | None = None) -> _Prepared:
    """Passages, sentences, terms and vocabulary words of a document, exactly as index.build_index
    cuts them (tests/test_milvus_store.py compares the two stores record by record)."""
    chunks: list[ChunkRecord] = []
    sentences: list[SentenceRecord] = []
    terms: list[list[str]] = []
    sent_row: dict[tuple[int, int], int] = {}
    for ch in chunk_document(doc.doc_id, doc.text, sentences_per_chunk=settings.chunk_sentences,
                             overlap=settings.chunk_overlap, max_chars=settings.chunk_max_chars):
        ids = []
        for s in ch.sentences:
            k = (s.start, s.end)
            if k not in sent_row:
                sent_row[k] = len(sentences)
                sentences.append(SentenceRecord(doc.doc_id, s.start, s.end))
            sentences[sent_row[k]].chunk_ids.append(len(chunks))
            ids.append(sent_row[k])
        chunks.append(ChunkRecord(ch.chunk_id, doc.doc_id, ch.start, ch.end, ids))
        terms.append(textmod.terms(ch.text, doc.language))
    words: dict[str, str] = {}
    forms: dict[str, Counter] = {}
    for surface in textmod.words(doc.text):  # as index.vocabulary_forms
        w = surface.lower()
        if len(w) <= 2 or any(c.isdigit() for c in w) or w in textmod.STOPWORDS or textmod.fold(w) in textmod.STOPWORDS:
            continue
        if w not in words:
            words[w] = textmod.stem(w, doc.language)
        forms.setdefault(w, Counter())[surface] += 1
    return _Prepared(doc, folder, key or Path(doc.path).name, chunks, sentences, terms, words, forms)


def _doc_meta(p: _Prepared, c0: int, s0: int) -> dict:
    return {**p.doc.metadata(), "path": p.key, "sha256": p.doc.content_hash, "folder": p.folder, "name": Path(p.doc.path).name,
            "c0": c0, "nc": len(p.chunks), "s0": s0, "ns": len(p.sentences), "roles": p.roles}


@dataclass
class _Old:
    """A live document of the current build: its metadata (with its id ranges)."""

    meta: dict
    born: int


def _live_documents(conn: Connection, names: dict, seq: int) -> dict[str, _Old]:
    out: dict[str, _Old] = {}
    it = conn.call("query_iterator", names["documents"], batch_size=2000,
                   filter=f"part == 0 and born <= {seq} and died > {seq}", output_fields=["meta", "born"],
                   consistency_level="Strong")
    try:
        while True:
            try:
                batch = it.next()
            except Exception as exc:  # noqa: BLE001
                raise conn._unavailable(exc) from None
            if not batch:
                break
            for r in batch:
                out[r["meta"]["doc_id"]] = _Old(r["meta"], int(r["born"]))
    finally:
        try:
            it.close()
        except Exception:  # noqa: BLE001
            pass
    return out


def _reusable(conn: Connection, names: dict, old: _Old, n_enc: int) -> tuple[list[np.ndarray], list[np.ndarray], list[SentenceNotes], list]:
    """Vectors, annotations and latent-term codes (None where absent) of a document's rows, to
    copy instead of embedding again."""
    m = old.meta
    fields = [f"v{e}" for e in range(n_enc)]

    def rows(coll: str, start: int, n: int, extra: list[str]) -> list[dict]:
        got: dict[int, dict] = {}
        for a in range(start, start + n, BATCH_ROWS):
            b = min(a + BATCH_ROWS, start + n)
            for r in conn.call("query", coll, filter=f"id >= {a} and id < {b}", output_fields=["id", *fields, *extra],
                               consistency_level="Strong"):
                got[int(r["id"])] = r
        return [got[i] for i in range(start, start + n)]

    crows = rows(names["chunks"], int(m["c0"]), int(m["nc"]), [])
    srows = rows(names["sentences"], int(m["s0"]), int(m["ns"]), ["entities", "anaphor", "latent"])
    cvec = [np.array([r[f] for r in crows], dtype=np.float32).reshape(len(crows), -1) for f in fields]
    svec = [np.array([r[f] for r in srows], dtype=np.float32).reshape(len(srows), -1) for f in fields]
    notes = [SentenceNotes(tuple((int(a), int(b), str(c)) for a, b, c in (r.get("entities") or [])), bool(r["anaphor"])) for r in srows]
    return cvec, svec, notes, [_latent_from_row(r.get("latent")) for r in srows]


def _latent_from_row(value) -> tuple[np.ndarray, np.ndarray] | None:
    if not value or "i" not in value:
        return None
    return np.asarray(value["i"], dtype=np.int32), np.asarray(value["v"], dtype=np.float32)


def _latent_to_row(code) -> dict:
    if code is None:
        return {}
    return {"i": [int(i) for i in code[0]], "v": [round(float(v), 5) for v in code[1]]}


class _Writer:
    """Writes prepared documents in batches: annotate, embed (or reuse), insert."""

    def __init__(self, conn: Connection, settings: Settings, encoders: EncoderSet, names: dict, born: int,
                 step: Progress, reuse: Callable[[str], _Old | None], reuse_names: dict | None):
        self.conn, self.settings, self.encoders, self.names, self.born = conn, settings, encoders, names, born
        self.step, self.reuse, self.reuse_names = step, reuse, reuse_names
        self.embedded = 0
        self.reused = 0
        self.rows = 0
        self.sentence_sums = [np.zeros(e.dimension, np.float64) for e in encoders]  # corpus centroid (index: Retriever.centroid)
        spec = latent_terms_setting(settings, encoders.ids)
        self.latent_encoder = encoders[spec["encoder"]] if spec else None
        self.latent_coded = 0

    def write(self, batch: list[tuple[_Prepared, int, int]], total_rows: int) -> None:
        n_enc = len(self.encoders)
        notes: dict[int, list[SentenceNotes]] = {}
        cvecs: dict[int, list[np.ndarray]] = {}
        svecs: dict[int, list[np.ndarray]] = {}
        latent: dict[int, list] = {}
        to_embed: list[tuple[int, str, int, str]] = []  # (batch row, "c"/"s", local row, text)
        for bi, (p, _, _) in enumerate(batch):
            old = self.reuse(p.doc.content_hash)
            if old is not None and int(old.meta["nc"]) == len(p.chunks) and int(old.meta["ns"]) == len(p.sentences):
                cvecs[bi], svecs[bi], notes[bi], latent[bi] = _reusable(self.conn, self.reuse_names, old, n_enc)
                self.reused += 1
                continue
            latent[bi] = [None] * len(p.sentences)
            cvecs[bi] = [np.zeros((len(p.chunks), e.dimension), np.float32) for e in self.encoders]
            svecs[bi] = [np.zeros((len(p.sentences), e.dimension), np.float32) for e in self.encoders]
            to_embed += [(bi, "c", r, p.doc.text[c.start : c.end]) for r, c in enumerate(p.chunks)]
            to_embed += [(bi, "s", r, p.doc.text[s.start : s.end]) for r, s in enumerate(p.sentences)]
            if self.settings.annotate:
                notes[bi] = annotate(p.doc.text, p.doc.language, [(s.start, s.end) for s in p.sentences])
            else:
                notes[bi] = [SentenceNotes() for _ in p.sentences]
        texts = [t for *_, t in to_embed]
        coding = [kind == "s" for _, kind, _, _ in to_embed] if self.latent_encoder is not None else None
        for e, enc in enumerate(self.encoders):
            for part, vecs, codes in embed_batches(enc, texts, coding if enc is self.latent_encoder else None):
                for j, (p, v) in enumerate(zip(part, vecs)):
                    bi, kind, r, _ = to_embed[p]
                    (cvecs if kind == "c" else svecs)[bi][e][r] = v
                    if codes is not None:
                        latent[bi][r] = codes[j]
        self.embedded += len(texts) * n_enc
        if self.latent_encoder is not None:  # what the embedding pass did not code (reused vectors)
            todo = [(bi, r, p.doc.text[s.start : s.end]) for bi, (p, _, _) in enumerate(batch)
                    for r, s in enumerate(p.sentences) if latent[bi][r] is None]
            for (bi, r, _), code in zip(todo, code_latent_terms(self.latent_encoder, [t for *_, t in todo])):
                latent[bi][r] = code
            self.latent_coded += len(todo) + sum(coding)
        chunk_rows, sent_rows, doc_rows = [], [], []
        for bi, (p, c0, s0) in enumerate(batch):
            for e in range(n_enc):
                self.sentence_sums[e] += svecs[bi][e].sum(axis=0, dtype=np.float64)
            annotated = [SentenceRecord(s.doc_id, s.start, s.end, s.chunk_ids, n.entities, n.anaphor)
                         for s, n in zip(p.sentences, notes[bi])]
            p.roles = role_counts(p.doc, annotated)
            for r, c in enumerate(p.chunks):
                text = p.doc.text[c.start : c.end]
                lex = lex_document(p.chunk_terms[r]) if self.settings.milvus_bm25_input == "terms" else text
                if len(text.encode("utf-8")) > VARCHAR_MAX or len(lex.encode("utf-8")) > VARCHAR_MAX:
                    raise DocumentError(p.doc.path, f"passage {c.chunk_id} is longer than {VARCHAR_MAX} bytes; split the text into paragraphs")
                chunk_rows.append({"id": c0 + r, "born": self.born, "died": DIED_NEVER, "doc_id": p.doc.doc_id, "start": c.start,
                                   "end": c.end, "chunk_key": c.chunk_id, "lang": p.doc.language, "sentence_ids": [s0 + s for s in c.sentence_ids],
                                   "text": text, "lex": lex, **{f"v{e}": cvecs[bi][e][r] for e in range(n_enc)}})
            for r, s in enumerate(p.sentences):
                n = notes[bi][r]
                sent_rows.append({"id": s0 + r, "born": self.born, "died": DIED_NEVER, "doc_id": p.doc.doc_id, "start": s.start,
                                  "end": s.end, "prev": s0 + r - 1 if r > 0 else -1,
                                  "next": s0 + r + 1 if r + 1 < len(p.sentences) else -1,
                                  "chunk_ids": [c0 + c for c in s.chunk_ids], "entities": [list(x) for x in n.entities],
                                  "anaphor": bool(n.anaphor), "text": p.doc.text[s.start : s.end],
                                  "latent": _latent_to_row(latent[bi][r] if self.latent_encoder is not None else None),
                                  **{f"v{e}": svecs[bi][e][r] for e in range(n_enc)}})
            meta = _doc_meta(p, c0, s0)
            for part, chunk in enumerate(split_utf8(p.doc.text)):
                doc_rows.append({"key": f"{self.born}/{part}/{p.doc.doc_id}", "doc_id": p.doc.doc_id, "born": self.born,
                                 "died": DIED_NEVER, "part": part, "text": chunk, "meta": meta if part == 0 else {},
                                 "_v": [0.0, 0.0]})
        for coll, rows in (("chunks", chunk_rows), ("sentences", sent_rows), ("documents", doc_rows)):
            for i in range(0, len(rows), BATCH_ROWS):
                self.conn.call("insert", self.names[coll], rows[i : i + BATCH_ROWS])
        self.rows += len(chunk_rows) + len(sent_rows)
        self.step("writing", self.rows, total_rows)


def _embed_words(conn: Connection, encoders: EncoderSet, vocab_coll: str, words: list[tuple[str, str]],
                 reuse_coll: str | None, step: Progress, written: dict[str, str] | None = None) -> int:
    """Vocabulary rows for new words: vectors copied from ``reuse_coll`` when it has them (same
    primary model), else embedded as most often written ("Corée", index.vocabulary_forms).
    Stored rounded to float16 precision, as the FAISS store."""
    written = written or {}
    known: dict[str, list[float]] = {}
    if reuse_coll:
        for i in range(0, len(words), BATCH_ROWS):
            for row in conn.call("get", reuse_coll, ids=[word_id(w) for w, _ in words[i : i + BATCH_ROWS]], output_fields=["word", "v"]):
                known[row["word"]] = row["v"]
    fresh = [w for w, _ in words if w not in known]
    for i in range(0, len(fresh), 256):
        part = fresh[i : i + 256]
        vecs = encoders.primary.encode([written.get(w, w) for w in part], query=True).astype(np.float16).astype(np.float32)
        known.update(zip(part, vecs))
        step("embedding words", i + len(part), len(fresh))
    rows = [{"id": word_id(w), "word": w, "term": t, "v": np.asarray(known[w], dtype=np.float32)} for w, t in words]
    for i in range(0, len(rows), BATCH_ROWS):
        conn.call("upsert", vocab_coll, rows[i : i + BATCH_ROWS])
    return len(fresh)


def _corpus_tables(prepared: list[_Prepared]) -> tuple[Counter, dict[str, list]]:
    """Document frequency of every term (over passages) and of every vocabulary word (over
    documents, with the term of the first document that has it, as index.vocabulary)."""
    terms_df: Counter = Counter()
    words: dict[str, list] = {}
    for p in prepared:
        for t in p.chunk_terms:
            terms_df.update(set(t))
        for w, t in p.words.items():
            if w in words:
                words[w][1] += 1
            else:
                words[w] = [t, 1]
    return terms_df, words


def _written_forms(prepared: list[_Prepared], wanted: Iterable[str]) -> dict[str, str]:
    """The form each word is written in most often across the corpus (index.vocabulary_forms)."""
    wanted = set(wanted)
    forms: dict[str, Counter] = {}
    for p in prepared:
        for w, c in p.forms.items():
            if w in wanted:
                forms.setdefault(w, Counter()).update(c)
    return {w: c.most_common(1)[0][0] for w, c in forms.items()}


def _avgdl(prepared: list[_Prepared]) -> float:
    """Mean passage length in terms, computed as index.build_lexical computes it."""
    lengths = np.array([max(len(t), 1) for p in prepared for t in p.chunk_terms], dtype=np.float32)
    return float(lengths.mean()) if len(lengths) else 1.0


def _role_blobs(roles: dict[str, dict[str, int]]) -> list[str]:
    return lines_blobs(f"{t}\t" + ",".join(f"{k}={v}" for k, v in sorted(c.items())) for t, c in sorted(roles.items()))


def parse_roles(blobs: list[str]) -> dict[str, dict[str, int]]:
    out = {}
    for blob in blobs:
        for line in blob.split("\n"):
            if line:
                term, counts = line.split("\t")
                out[term] = {k: int(v) for k, v in (kv.split("=") for kv in counts.split(",") if kv)}
    return out


def _tables(terms_df: dict[str, int], words: dict[str, tuple[str, int]]) -> tuple[list[str], list[str]]:
    t = lines_blobs(f"{term}\t{df}" for term, df in sorted(terms_df.items()) if df > 0)
    # most frequent first: a replica reads only as far as its vocabulary cap
    w = lines_blobs(f"{word}\t{term}\t{df}" for word, (term, df) in sorted(words.items(), key=lambda kv: (-kv[1][1], kv[0])) if df > 0)
    return t, w


def _publish(conn: Connection, settings: Settings, manifest: dict, *, switch_alias: bool) -> None:
    names = manifest["collections"]
    for coll in (names["chunks"], names["sentences"], names["documents"], names["vocab"], names["meta"]):
        conn.call("flush", coll)
    time.sleep(publish_delay(settings, conn.kind))
    manifest["published_at"] = time.time()
    value = json.dumps(manifest, ensure_ascii=False)
    if len(value.encode("utf-8")) > VARCHAR_MAX:  # pragma: no cover - the manifest holds no per-document data
        raise SummitError("the Milvus manifest is too large")
    conn.call("upsert", names["meta"], [{"key": "manifest", "seq": manifest["seq"], "value": value, "_v": [0.0, 0.0]}])
    conn.call("flush", names["meta"])
    if switch_alias:
        alias = alias_name(settings.milvus_prefix)
        try:
            conn.call("describe_alias", alias)
            exists = True
        except StoreUnavailableError:
            exists = False
        conn.call("alter_alias" if exists else "create_alias", names["meta"], alias)


def _generations(conn: Connection, prefix: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    rx = re.compile(rf"^{re.escape(prefix)}_g(\d+)_({'|'.join(KINDS)})$")
    for name in conn.call("list_collections"):
        m = rx.match(name)
        if m:
            out.setdefault(int(m.group(1)), []).append(name)
    return out


def _drop_old_generations(conn: Connection, settings: Settings, current: dict | None) -> list[int]:
    """Drop what no replica can be reading: generations older than the one before the current
    one, the one before once the current has served for the grace period, and leftovers of
    failed builds (newer than the current, never published)."""
    gens = _generations(conn, settings.milvus_prefix)
    cur = int(current["generation"]) if current else -1
    settled = current is None or time.time() - float(current.get("first_published_at", current.get("published_at", 0))) >= settings.milvus_grace_seconds
    dropped = []
    for g, names in sorted(gens.items()):
        if g == cur or (g == cur - 1 and not settled):
            continue
        if g < cur or g > cur:
            for name in names:
                conn.call("drop_collection", name)
            dropped.append(g)
    return dropped


def _rollback(conn: Connection, names: dict, seq: int) -> int:
    """Undo a failed update's writes: rows born after ``seq``, retirements after ``seq``."""
    undone = 0
    for kind in ("chunks", "sentences", "documents"):
        coll = names[kind]
        pk = "key" if kind == "documents" else "id"
        rows = conn.call("query", coll, filter=f"born > {seq}", output_fields=[pk], consistency_level="Strong")
        if rows:
            conn.call("delete", coll, filter=f"born > {seq}")
            undone += len(rows)
        rows = conn.call("query", coll, filter=f"died > {seq} and died < {DIED_NEVER}", output_fields=[pk],
                         consistency_level="Strong")
        for i in range(0, len(rows), BATCH_ROWS):
            conn.call("upsert", coll, [{pk: r[pk], "died": DIED_NEVER} for r in rows[i : i + BATCH_ROWS]], partial_update=True)
        undone += len(rows)
    return undone


def _purge(conn: Connection, settings: Settings, manifest: dict) -> int:
    """Once every replica had the grace period to switch to the current build: delete the rows
    it retired and the tables of older builds. Returns the rows deleted."""
    seq, names = int(manifest["seq"]), manifest["collections"]
    if time.time() - float(manifest.get("published_at", 0)) < settings.milvus_grace_seconds:
        return 0
    conn.call("delete", names["meta"], filter=f"seq < {seq} and seq > 0")
    if not manifest.get("dead_rows"):
        return 0
    for kind in ("chunks", "sentences", "documents"):
        conn.call("delete", names[kind], filter=f"died <= {seq}")
    return int(manifest["dead_rows"])


def _batches(items: list[_Prepared], rows_per_batch: int = 2000) -> Iterator[list[_Prepared]]:
    batch, rows = [], 0
    for p in items:
        batch.append(p)
        rows += len(p.chunks) + len(p.sentences)
        if rows >= rows_per_batch:
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


def _corpus(settings: Settings, skip_invalid: bool) -> tuple[list[_Prepared], list]:
    documents, skipped = load_corpus(settings, skip_invalid=skip_invalid)
    folders = corpus_dirs(settings)
    prepared = []
    for d in documents:
        fi = next((i for i, f in enumerate(folders) if Path(d.path).parent == f), 0)
        prepared.append(prepare(d, settings, fi, _document_key(fi, Path(d.path))))
    return prepared, skipped


def _new_build_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def build(conn: Connection, settings: Settings, encoders, *, force: bool = False, skip_invalid: bool = False,
          progress: Progress | None = None) -> dict:
    """Build or update the Milvus index from the document folders; returns a summary like
    index.build_index's. Full (new collections, alias switched) when forced, when there is no
    index, or when the models or settings changed; otherwise an update of the changed documents.
    A failure leaves the published build serving."""
    settings.check()
    encoders = EncoderSet.of(encoders)
    t0 = time.perf_counter()
    step = progress or (lambda stage, done, total: None)
    with BuildLock(conn, settings.milvus_prefix):
        prepared, skipped = _corpus(settings, skip_invalid)
        encoders.load()
        fingerprint = milvus_fingerprint(settings, encoders.ids)
        current = read_manifest(conn, settings.milvus_prefix)
        compatible = current is not None and all(current.get(k) == v for k, v in fingerprint.items()) \
            and current.get("dimensions") == [e.dimension for e in encoders]
        if force or not compatible:
            summary = _full(conn, settings, encoders, prepared, current, fingerprint, compatible, step)
        else:
            summary = _update(conn, settings, encoders, prepared, current, step)
    summary.update({"skipped": [str(e) for e in skipped], "seconds": round(time.perf_counter() - t0, 3), "store": "milvus"})
    return summary


def _full(conn, settings, encoders, prepared, current, fingerprint, compatible, step) -> dict:
    prefix = settings.milvus_prefix
    dropped = _drop_old_generations(conn, settings, current)
    gens = _generations(conn, prefix)
    generation = max([int(current["generation"]) if current else 0, *gens.keys()]) + 1
    names = collection_names(prefix, generation)
    dims = [e.dimension for e in encoders]
    n_chunks = sum(len(p.chunks) for p in prepared)
    n_sents = sum(len(p.sentences) for p in prepared)
    seq = 1
    try:
        types = create_generation(conn, settings, names, dims, n_chunks, n_sents)
        old_docs = _live_documents(conn, current["collections"], int(current["seq"])) if (current and compatible) else {}
        by_hash = {o.meta["sha256"]: o for o in old_docs.values()}
        writer = _Writer(conn, settings, encoders, names, seq, step, by_hash.get, current["collections"] if current else None)
        placed, c0, s0 = [], 0, 0
        for p in prepared:
            placed.append((p, c0, s0))
            c0 += len(p.chunks)
            s0 += len(p.sentences)
        total = n_chunks + n_sents
        index = {id(p): i for i, (p, _, _) in enumerate(placed)}
        for batch in _batches(prepared):
            writer.write([placed[index[id(p)]] for p in batch], total)
        terms_df, words = _corpus_tables(prepared)
        vocab_words = [(w, t) for w, (t, _) in sorted(words.items()) if t in terms_df]
        reuse_vocab = current["collections"]["vocab"] if (current and current.get("encoders", [None])[0] == encoders.ids[0]
                                                          and current.get("dimensions", [None])[0] == dims[0]) else None
        new_words = _embed_words(conn, encoders, names["vocab"], vocab_words, reuse_vocab, step,
                                 _written_forms(prepared, (w for w, _ in vocab_words)))
        tblobs, wblobs = _tables(dict(terms_df), {w: (t, df) for w, (t, df) in words.items()})
        rblobs = _role_blobs(role_table(p.roles for p in prepared))
        _write_blobs(conn, names["meta"], "terms", seq, tblobs)
        _write_blobs(conn, names["meta"], "words", seq, wblobs)
        _write_blobs(conn, names["meta"], "roles", seq, rblobs)
        build_id = _new_build_id()
        manifest = {
            **fingerprint,
            "build_id": build_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "store": "milvus",
            "generation": generation,
            "seq": seq,
            "collections": names,
            "dimension": dims[0],
            "dimensions": dims,
            "index_type": types["chunks"],
            "index_types": types,
            "counts": {"documents": len(prepared), "chunks": n_chunks, "sentences": n_sents},
            "avgdl": _avgdl(prepared),
            "next_ids": {"chunk": n_chunks, "sentence": n_sents},
            "blobs": {"terms": len(tblobs), "words": len(wblobs), "roles": len(rblobs)},
            "centroid_sums": [v.tolist() for v in writer.sentence_sums],
            "dead_rows": 0,
            "vocabulary": len(vocab_words),
        }
        manifest["first_published_at"] = time.time()
        _publish(conn, settings, manifest, switch_alias=True)
    except BaseException:
        # Nothing was published: the current alias keeps serving. Drop what this build wrote
        # (unless the alias switch itself went through and only its answer was lost).
        try:
            if (read_manifest(conn, prefix) or {}).get("generation") != generation:
                for name in names.values():
                    if conn.call("has_collection", name):
                        conn.call("drop_collection", name)
        except SummitError:
            pass  # the next build drops leftovers
        raise
    return {"built": True, "mode": "full", "build_id": build_id, "generation": generation, "documents": len(prepared),
            "chunks": n_chunks, "sentences": n_sents, "index_type": types["chunks"], "reused_documents": writer.reused,
            "embedded_texts": writer.embedded + new_words, "latent_coded": writer.latent_coded, "dropped_generations": dropped}


def _update(conn, settings, encoders, prepared, current, step) -> dict:
    names, seq = current["collections"], int(current["seq"])
    rolled = _rollback(conn, names, seq)
    purged = _purge(conn, settings, current)
    dead_rows = 0 if purged else int(current.get("dead_rows", 0))
    live = _live_documents(conn, names, seq)
    wanted = {p.doc.doc_id: p for p in prepared}
    changed = [p for p in prepared if p.doc.doc_id in live and (live[p.doc.doc_id].meta.get("sha256") != p.doc.content_hash
                                                                or live[p.doc.doc_id].meta.get("path") != p.key)]
    added = [p for p in prepared if p.doc.doc_id not in live]
    removed = [d for d in live if d not in wanted]
    retire = [live[p.doc.doc_id] for p in changed] + [live[d] for d in removed]
    new_seq = seq + 1
    if not (changed or added or removed):
        return {"built": False, "reason": "index is up to date", "build_id": current["build_id"]}
    by_hash = {o.meta["sha256"]: o for o in live.values()}
    writer = _Writer(conn, settings, encoders, names, new_seq, step, by_hash.get, names)
    c0, s0 = int(current["next_ids"]["chunk"]), int(current["next_ids"]["sentence"])
    placed = []
    for p in changed + added:
        placed.append((p, c0, s0))
        c0 += len(p.chunks)
        s0 += len(p.sentences)
    total = sum(len(p.chunks) + len(p.sentences) for p, _, _ in placed)
    index = {id(p): i for i, (p, _, _) in enumerate(placed)}
    for batch in _batches([p for p, _, _ in placed]):
        writer.write([placed[index[id(p)]] for p in batch], total)
    # Tables of the whole corpus (every document is cut anyway to find what changed; only the
    # changed ones are embedded): the same document frequencies and word -> term choices as a
    # FAISS build from scratch.
    terms_df, words = _corpus_tables(prepared)
    counts = {"documents": len(prepared), "chunks": sum(len(p.chunks) for p in prepared),
              "sentences": sum(len(p.sentences) for p in prepared)}
    dead_rows += sum(int(o.meta["nc"]) + int(o.meta["ns"]) for o in retire)
    meta_coll = names["meta"]
    # Vectors for words new to the vocabulary collection.
    have: set[str] = set()
    candidates = sorted({w for p, _, _ in placed for w in p.words if w in words})
    for i in range(0, len(candidates), BATCH_ROWS):
        have.update(r["word"] for r in conn.call("get", names["vocab"], ids=[word_id(w) for w in candidates[i : i + BATCH_ROWS]],
                                                 output_fields=["word"]))
    new_vocab = [(w, words[w][0]) for w in candidates if w not in have and words[w][0] in terms_df]
    new_words = _embed_words(conn, encoders, names["vocab"], new_vocab, None, step,
                             _written_forms(prepared, (w for w, _ in new_vocab))) if new_vocab else 0
    # The corpus centroid: minus the retired documents' sentence vectors, plus the new ones.
    sums = [np.asarray(v, dtype=np.float64) for v in current.get("centroid_sums") or [np.zeros(e.dimension) for e in encoders]]
    for old in retire:
        a, n = int(old.meta["s0"]), int(old.meta["ns"])
        fields = [f"v{e}" for e in range(len(encoders))]
        for lo in range(a, a + n, BATCH_ROWS):
            for row in conn.call("query", names["sentences"], filter=f"id >= {lo} and id < {min(lo + BATCH_ROWS, a + n)}",
                                 output_fields=fields, consistency_level="Strong"):
                for e, f in enumerate(fields):
                    sums[e] -= np.asarray(row[f], dtype=np.float64)
    sums = [x + y for x, y in zip(sums, writer.sentence_sums)]
    rewritten = {p.doc.doc_id for p, _, _ in placed}
    roles = role_table([p.roles for p, _, _ in placed] + [o.meta.get("roles") or {} for d, o in live.items()
                                                          if d in wanted and d not in rewritten])
    # Retire the replaced rows (readers at `seq` still see them until they switch).
    for old in retire:
        m = old.meta
        for coll, a, n in (("chunks", int(m["c0"]), int(m["nc"])), ("sentences", int(m["s0"]), int(m["ns"]))):
            ids = list(range(a, a + n))
            for i in range(0, len(ids), BATCH_ROWS):
                conn.call("upsert", names[coll], [{"id": x, "died": new_seq} for x in ids[i : i + BATCH_ROWS]], partial_update=True)
        keys = [r["key"] for r in conn.call("query", names["documents"], filter=f"doc_id == {filter_literal(m['doc_id'])} and born == {old.born}",
                                            output_fields=["key"], consistency_level="Strong")]
        if keys:
            conn.call("upsert", names["documents"], [{"key": k, "died": new_seq} for k in keys], partial_update=True)
    tblobs, wblobs = _tables(dict(terms_df), {w: (t, df) for w, (t, df) in words.items()})
    rblobs = _role_blobs(roles)
    _write_blobs(conn, meta_coll, "terms", new_seq, tblobs)
    _write_blobs(conn, meta_coll, "words", new_seq, wblobs)
    _write_blobs(conn, meta_coll, "roles", new_seq, rblobs)
    manifest = {
        **current,
        "build_id": _new_build_id(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seq": new_seq,
        "counts": counts,
        "avgdl": _avgdl(prepared),
        "next_ids": {"chunk": c0, "sentence": s0},
        "blobs": {"terms": len(tblobs), "words": len(wblobs), "roles": len(rblobs)},
        "centroid_sums": [v.tolist() for v in sums],
        "dead_rows": dead_rows,
        "vocabulary": sum(1 for _, (t, _) in words.items() if t in terms_df),
    }
    _publish(conn, settings, manifest, switch_alias=False)
    return {"built": True, "mode": "update", "build_id": manifest["build_id"], "generation": int(current["generation"]),
            "documents": counts["documents"], "chunks": counts["chunks"], "sentences": counts["sentences"],
            "index_type": current.get("index_type"), "reused_documents": writer.reused,
            "embedded_texts": writer.embedded + new_words, "latent_coded": writer.latent_coded, "added": sorted(p.doc.doc_id for p in added),
            "changed": sorted(p.doc.doc_id for p in changed), "removed": sorted(removed),
            "rolled_back_rows": rolled, "purged_rows": purged}


# ---- status (for the service) ------------------------------------------------------------------


def live_hashes(conn: Connection, manifest: dict) -> dict:
    """{doc_id: {"path", "sha256"}} of the published build, as index.documents_changed wants."""
    live = _live_documents(conn, manifest["collections"], int(manifest["seq"]))
    return {d: {"path": o.meta.get("path"), "sha256": o.meta.get("sha256")} for d, o in live.items()}


def status(conn: Connection, settings: Settings, encoder_ids, *, check_documents: bool = True) -> IndexStatus:
    """OK when the Milvus index is present, compatible and (if asked) up to date; else what and why not.
    Raises StoreUnavailableError when Milvus cannot be reached."""
    manifest = read_manifest(conn, settings.milvus_prefix)
    if manifest is None:
        return IndexStatus(IndexState.MISSING, f"no index in {conn.where} (prefix {settings.milvus_prefix}); run `summit build`")
    try:
        check_milvus_compatible(manifest, settings, encoder_ids)
    except IndexMismatchError as exc:
        return IndexStatus.of_error(exc)
    if not check_documents or not all(Path(d).is_dir() for d in corpus_dirs(settings)):
        return IndexStatus.OK  # no corpus here (a reader): nothing to compare with
    return IndexStatus.stale(documents_changed({"documents": live_hashes(conn, manifest)}, corpus_dirs(settings)))


# ---- replicas: follow the published build ------------------------------------------------------


class Follower:
    """Keeps an Assistant on the build published in Milvus: loads it (retrying while Milvus is
    unreachable or has no index yet), then checks the published build id every
    ``milvus_poll_seconds`` and switches to a new build (loaded and warmed up aside, then
    swapped in: requests keep being answered by the previous one meanwhile).

    ``problem`` says why the assistant cannot answer right now (None when it can)."""

    def __init__(self, assistant, interval: float | None = None):
        self.assistant = assistant
        self.interval = interval or assistant.settings.milvus_poll_seconds
        self.problem: str | None = None if assistant.index is not None else "loading the model and the index"
        self.pending: str | None = None  # a published build this replica cannot switch to, and why
        self.switches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="milvus-follower", daemon=True)

    def start(self) -> "Follower":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check(self) -> None:
        """One round: load or switch when needed; raises what went wrong."""
        a = self.assistant
        conn = connection(a)
        current = a.index
        manifest = read_manifest(conn, a.settings.milvus_prefix)
        if manifest is None:
            raise IndexMissingError(f"no index in {conn.where} (prefix {a.settings.milvus_prefix}); run `summit build`")
        if current is None or current.build_id != manifest.get("build_id"):
            a.embedder.load(wait=False)
            store = open_store(conn, a.settings, a.embedder.ids, previous=current if isinstance(current, MilvusStore) else None,
                               manifest=manifest)
            a._install(store)
            if current is not None:
                self.switches += 1
                log.info("switched to build %s (was %s)", store.build_id, current.build_id)
            else:
                log.info("ready: build %s from %s", store.build_id, conn.where)
        elif isinstance(current, MilvusStore):
            pass  # the manifest query above proved Milvus answers

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
                self.problem = None
                self.pending = None
            except StoreUnavailableError as exc:  # Milvus unreachable: requests fail too
                if self.problem != str(exc):
                    log.warning("milvus: %s", exc)
                self.problem = str(exc)
            except SummitError as exc:
                if self.assistant.index is not None:
                    # A newer build this replica cannot read (another model or settings: a rolling
                    # upgrade): keep answering from the build it has, and say so in the log.
                    if self.pending != str(exc):
                        log.warning("milvus: staying on build %s: %s", self.assistant.index.build_id, exc)
                    self.pending = str(exc)
                    self.problem = None
                else:
                    if self.problem != str(exc):
                        log.warning("milvus: %s", exc)
                    self.problem = str(exc)
            except Exception as exc:  # noqa: BLE001 - a replica must keep trying
                self.problem = f"cannot load the index from Milvus ({type(exc).__name__}: {exc})"
                log.exception("milvus follower")
            self._stop.wait(self.interval if self.problem is None else min(self.interval, 1.0))


# ---- the service's entry points (assistant/service.py delegates here) ---------------------------


def connection(assistant) -> Connection:
    conn = getattr(assistant, "_milvus", None)
    if conn is None:
        conn = assistant._milvus = Connection(assistant.settings)
    return conn


def load(assistant, *, rebuild: str = "stale", progress: Progress | None = None, background_model: bool = False):
    """Assistant.load for the milvus store. 'stale' (CLI) builds when the index is missing or the
    documents changed, as with FAISS; 'never' and 'any' (serve: replicas are readers) never
    build: a missing or mismatched index is an error."""
    conn = connection(assistant)
    current = status(conn, assistant.settings, assistant.embedder.ids, check_documents=(rebuild == "stale"))
    if not current.ok:
        if rebuild != "stale" or not current.rebuildable:
            raise current.error()
        assistant.embedder.load(wait=not background_model)
        log.warning("building the Milvus index: %s", current.reason)
        build_into(assistant, progress=progress)
        return assistant
    assistant.embedder.load(wait=not background_model)
    assistant._install(open_store(conn, assistant.settings, assistant.embedder.ids))
    return assistant


def build_into(assistant, *, force: bool = False, skip_invalid: bool = False, progress: Progress | None = None) -> dict:
    """Assistant.build for the milvus store: build or update when needed, then switch to it."""
    conn = connection(assistant)
    conn.ok()  # say that Milvus is unreachable, or another build runs, before spending seconds on the models
    BuildLock(conn, assistant.settings.milvus_prefix).check_free()
    assistant.embedder.load()
    current = status(conn, assistant.settings, assistant.embedder.ids)
    reason = None if current.ok else current.reason
    if current.ok and not force:
        manifest = read_manifest(conn, assistant.settings.milvus_prefix)
        if assistant.index is None or assistant.index.build_id != manifest["build_id"]:
            assistant._install(open_store(conn, assistant.settings, assistant.embedder.ids, manifest=manifest))
        return {"built": False, "reason": "index is up to date", "build_id": manifest["build_id"], "store": "milvus"}
    summary = build(conn, assistant.settings, assistant.embedder, force=force, skip_invalid=skip_invalid, progress=progress)
    previous = assistant.index if isinstance(assistant.index, MilvusStore) else None
    assistant._install(open_store(conn, assistant.settings, assistant.embedder.ids, previous=previous))
    if summary.get("built") is False:
        return {**summary, "store": "milvus"}
    return {"reason": reason or "forced", **summary}


def reload(assistant) -> dict:
    conn = connection(assistant)
    previous = assistant.index if isinstance(assistant.index, MilvusStore) else None
    store = open_store(conn, assistant.settings, assistant.embedder.ids, previous=previous)
    assistant._install(store)
    return {"build_id": store.build_id}
