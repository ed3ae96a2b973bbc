"""The store interface: what retrieval and answering need from an index, whatever holds it.

Two implementations:

* ``faiss`` (the default, embedded): ``index.LoadedIndex``, a build folder under ``index/``
  loaded whole into memory;
* ``milvus``: ``milvus_store.MilvusStore``, collections in milvus-lite (a local file) or a Milvus
  server/cluster (``http(s)://host:19530``).

Ids are opaque integers: row numbers in the FAISS store, stable primary keys in Milvus. Nothing
outside a store assumes they are contiguous; the sentence before another one is asked for with
``previous_sentence``.
"""

from __future__ import annotations

from typing import Iterable, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Store(Protocol):
    kind: str  # "faiss" or "milvus"
    manifest: dict  # format, encoders, chunking, per-document hashes, build id

    @property
    def build_id(self) -> str: ...

    @property
    def n_encoders(self) -> int: ...

    def counts(self) -> dict:
        """{"documents": N, "chunks": N, "sentences": N}"""

    # ---- records ---------------------------------------------------------------------------
    def document(self, doc_id: str) -> dict | None:
        """Metadata (doc_id, title, source, url, published, language) and the cleaned "text"."""

    def document_list(self) -> list[dict]:
        """Metadata of every document (a "text" key may be present; callers drop it)."""

    def chunk(self, cid: int):
        """A record with chunk_id, doc_id, start, end, sentence_ids (index.ChunkRecord)."""

    def sentence(self, sid: int):
        """A record with doc_id, start, end, chunk_ids, entities, anaphor (index.SentenceRecord)."""

    def chunk_text(self, cid: int) -> str: ...

    def sentence_text(self, sid: int) -> str: ...

    def previous_sentence(self, sid: int) -> int | None:
        """The sentence just before ``sid`` in the same document, or None."""

    def next_sentence(self, sid: int) -> int | None:
        """The sentence just after ``sid`` in the same document, or None."""

    def ids(self, level: str) -> Iterable[int]:
        """Every id of ``level`` ("chunk" or "sentence"), for scans (warm-up, evaluation);
        ids need not be contiguous (a Milvus store after an update is not)."""

    # ---- search ----------------------------------------------------------------------------
    def dense(self, encoder: int, level: str, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k (id, cosine) of ``level`` ("chunk" or "sentence") for encoder number ``encoder``."""

    def vectors(self, encoder: int, level: str, ids: Iterable[int]) -> np.ndarray:
        """Stored, normalised vectors of those rows, in order."""

    def lexical(self, terms: dict[str, float], k: int, words: list[str] | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for weighted index terms (accent-folded Snowball stems);
        ``words`` are the surface words behind them, for a store that analyses text itself."""

    # ---- lexical side tables (bounded, in memory) ------------------------------------------
    def term_idf(self, term: str) -> float | None:
        """idf of an index term, None when the corpus does not hold it."""

    @property
    def max_idf(self) -> float: ...

    def roles(self, term: str) -> dict[str, int]:
        """{"PER": n, "ORG": n, "LOC": n}: how often word ``term`` introduces such a name in the
        corpus (index.role_types); {} when unknown."""

    # Attributes: vocab (list[str], corpus words), vocab_vectors (np.ndarray, their primary-encoder
    # vectors, normalised), and term_of(row) -> the index term (stem) of vocabulary row ``row``.
