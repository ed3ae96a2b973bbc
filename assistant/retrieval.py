"""Candidate passages for a question: dense (FAISS over chunks and sentences) and lexical (BM25
with cross-lingual term translation), fused by reciprocal rank fusion.

Cross-lingual lexical matching needs no dictionary: every content word of the corpus is embedded
at build time with the same multilingual model, and a question word is matched to the corpus
words nearest to it ("foundation" -> "fondation", "boss" -> "patron", "billion" -> "milliards").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import text as textmod
from .embedding import Embedder
from .index import LoadedIndex

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "dense", "lexical")
RRF_K = 60
# A question word is translated to corpus words at least this similar (USE word vectors).
TRANSLATION_MIN_SIM = 0.62
TRANSLATIONS_PER_WORD = 3


@dataclass
class QueryWord:
    word: str
    weight: float  # 1 for the question's own words, less for context carried from history
    terms: dict[int, float]  # term id -> match strength (1 = same stem, else similarity)
    importance: float  # idf of its best term, or the highest idf when nothing in the corpus matches


@dataclass
class Query:
    text: str
    language: str
    vector: np.ndarray
    words: list[QueryWord] = field(default_factory=list)

    def term_weights(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for w in self.words:
            for t, s in w.terms.items():
                out[t] = max(out.get(t, 0.0), s * w.weight)
        return out


@dataclass
class Candidate:
    chunk: int
    rrf: float = 0.0
    dense: float = 0.0  # best cosine of the chunk or one of its sentences
    lexical: float = 0.0  # BM25 score


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder):
        self.index = index
        self.embedder = embedder
        self._sentence_vectors: np.ndarray | None = None
        self._sentence_terms: dict[int, frozenset[int]] = {}

    # ---- query analysis ----------------------------------------------------------------
    def analyze(self, question: str, context: list[tuple[str, float]] = (), language: str | None = None) -> Query:
        """Embed the question (blended with weighted context from the conversation) and map its
        words to corpus terms."""
        idx = self.index
        items: list[tuple[str, float]] = [(w, 1.0) for w in dict.fromkeys(textmod.content_words(question))]
        for ctx_text, ctx_weight in context:
            items += [(w, ctx_weight) for w in dict.fromkeys(textmod.content_words(ctx_text)) if w not in dict(items)]
        texts = [question] + [c for c, _ in context] + [w for w, _ in items]
        vecs = self.embedder.encode(texts)
        qvec = vecs[0].copy()
        for (ctx_text, ctx_weight), v in zip(context, vecs[1 : 1 + len(context)]):
            qvec += ctx_weight * v
        qvec /= max(float(np.linalg.norm(qvec)), 1e-9)
        word_vecs = vecs[1 + len(context) :]
        max_idf = float(idx.idf.max()) if len(idx.idf) else 1.0
        sims = word_vecs @ idx.vocab_vectors.T if len(idx.vocab) and len(items) else np.zeros((len(items), 0))
        words = []
        for (word, weight), row in zip(items, sims):
            terms: dict[int, float] = {}
            for lang in ("fr", "en"):
                t = idx.term_ids.get(textmod.stem(word, lang))
                if t is not None:
                    terms[t] = 1.0
            if row.size:
                top = np.argpartition(-row, min(TRANSLATIONS_PER_WORD, row.size - 1))[:TRANSLATIONS_PER_WORD]
                for j in top:
                    s = float(row[j])
                    if s >= TRANSLATION_MIN_SIM:
                        t = idx.vocab_terms[j]
                        terms[t] = max(terms.get(t, 0.0), min(1.0, s))
            importance = max((float(idx.idf[t]) for t in terms), default=max_idf)
            words.append(QueryWord(word, weight, terms, importance))
        return Query(question, language or textmod.detect_language(question), qvec, words)

    # ---- candidate generation -----------------------------------------------------------
    def dense_chunks(self, query: Query, n: int) -> list[tuple[int, float]]:
        idx = self.index
        q = query.vector[None, :].astype(np.float32)
        scores: dict[int, float] = {}
        kc = min(n, idx.chunk_index.ntotal)
        if kc:
            d, i = idx.chunk_index.search(q, kc)
            for c, s in zip(i[0], d[0]):
                if c >= 0:
                    scores[int(c)] = max(scores.get(int(c), -1.0), float(s))
        ks = min(n * 2, idx.sentence_index.ntotal)
        if ks:
            d, i = idx.sentence_index.search(q, ks)
            for sid, s in zip(i[0], d[0]):
                if sid < 0:
                    continue
                for c in idx.sentences[int(sid)].chunk_ids:
                    scores[c] = max(scores.get(c, -1.0), float(s))
        return sorted(scores.items(), key=lambda kv: -kv[1])[:n]

    def lexical_chunks(self, query: Query, n: int) -> list[tuple[int, float]]:
        weights = query.term_weights()
        if not weights:
            return []
        ids = np.fromiter(weights.keys(), dtype=np.int64)
        w = np.fromiter(weights.values(), dtype=np.float32)
        scores = np.asarray(self.index.bm25[ids].T @ w).ravel()
        nz = np.flatnonzero(scores > 0)
        if not nz.size:
            return []
        top = nz[np.argsort(-scores[nz], kind="stable")[:n]]
        return [(int(c), float(scores[c])) for c in top]

    def candidates(self, query: Query, mode: Mode = "hybrid", n: int = 30) -> list[Candidate]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        found: dict[int, Candidate] = {}
        lists = []
        if mode in ("hybrid", "dense"):
            dense = self.dense_chunks(query, n)
            lists.append(dense)
            for c, s in dense:
                found.setdefault(c, Candidate(c)).dense = s
        if mode in ("hybrid", "lexical"):
            lexical = self.lexical_chunks(query, n)
            lists.append(lexical)
            for c, s in lexical:
                found.setdefault(c, Candidate(c)).lexical = s
        for ranked in lists:
            for rank, (c, _) in enumerate(ranked):
                found[c].rrf += 1.0 / (RRF_K + rank + 1)
        return sorted(found.values(), key=lambda cand: -cand.rrf)

    # ---- sentence-level evidence --------------------------------------------------------
    def sentence_vector(self, sid: int) -> np.ndarray:
        idx = self.index
        if self._sentence_vectors is None and idx.sentence_index.ntotal <= 200_000:
            self._sentence_vectors = idx.sentence_index.reconstruct_n(0, idx.sentence_index.ntotal)
        if self._sentence_vectors is not None:
            return self._sentence_vectors[sid]
        return idx.sentence_index.reconstruct(int(sid))

    def sentence_terms(self, sid: int) -> frozenset[int]:
        cached = self._sentence_terms.get(sid)
        if cached is None:
            s = self.index.sentences[sid]
            lang = self.index.documents[s.doc_id].get("language", "fr")
            ids = self.index.term_ids
            cached = frozenset(ids[t] for t in textmod.terms(self.index.sentence_text(sid), lang) if t in ids)
            self._sentence_terms[sid] = cached
        return cached
