"""Candidate passages for a question: dense (FAISS over chunks and sentences) and lexical (BM25
with cross-lingual term translation), fused by reciprocal rank fusion.

Cross-lingual lexical matching needs no dictionary: every content word of the corpus is embedded
at build time with the same multilingual model, and a question word is matched to the corpus
words nearest to it ("foundation" -> "fondation", "boss" -> "patron", "billion" -> "milliards").
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
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
TRANSLATION_MIN_SIM = 0.55
DIRECT_SYNONYM_MIN_SIM = 0.8
TRANSLATIONS_PER_WORD = 3
EMBED_CACHE_SIZE = 20_000
WARM_UP_MAX_SENTENCES = 100_000
VECTOR_COPY_MAX = 200_000  # vectors copied out of FAISS for direct access
# Rare words say more about what a question asks than common ones (idf**2 > idf).
IDF_POWER = 1.5


# Compounds sharing a prefix ("co-chairs" / "co-présidera", "vice-president" / "vice-président")
# are related beyond what word vectors of the whole compound show.
PREFIX_BONUS = 0.15
_PREFIX = re.compile(r"^(co|vice|ex|non|pr[eé]|post|anti|multi|semi|sous|sub|super|inter|n[eé]o|contre|counter|auto|extra|micro|macro)-")


def _compound_prefix(word: str) -> str | None:
    m = _PREFIX.match(textmod.fold(word))
    return m.group(1).replace("e", "e") if m else None


def translation_strength(similarity: float) -> float:
    """How much a translated term counts: weak matches little, near-identical ones fully."""
    return float(min(1.0, max(0.0, (similarity - 0.45) / 0.45)))


@dataclass
class QueryWord:
    word: str
    weight: float  # 1 for the question's own words, less for context carried from history
    terms: dict[int, float]  # term id -> match strength (1 = same stem, else similarity)
    importance: float  # idf of its best term, or the highest idf when nothing in the corpus matches
    entity: bool = False  # written as a proper name in the question ("Japon", "Zuckerberg")
    sims: np.ndarray | None = None  # similarity to every corpus vocabulary word

    @property
    def strength(self) -> float:
        return max(self.terms.values(), default=0.0)


@dataclass
class Query:
    text: str
    language: str
    vector: np.ndarray
    words: list[QueryWord] = field(default_factory=list)
    # Documents whose publisher the question names ("according to RTL", "selon Les Echos").
    sources: frozenset[str] = frozenset()
    cache: dict = field(default_factory=dict)  # per-query memo for the answerer

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
        self._vectors: dict[str, np.ndarray] = {}
        self._sentence_vocab: dict[int, np.ndarray] = {}
        self._vocab_row: dict[str, int] | None = None
        self._prefix_rows: dict[str, np.ndarray] | None = None
        self._source_patterns: list[tuple[re.Pattern, str]] | None = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._sentence_terms: dict[int, frozenset[int]] = {}

    def warm_up(self) -> None:
        """Precompute per-sentence tables and vector copies for a small corpus, so the first
        questions are as fast as the rest (a large corpus fills them on demand)."""
        if len(self.index.sentences) > WARM_UP_MAX_SENTENCES:
            return
        for sid in range(len(self.index.sentences)):
            self.sentence_terms(sid)
            self.sentence_vocab(sid)
        if len(self.index.sentences):
            self.sentence_vector(0)
        if len(self.index.chunks):
            self.chunk_vector(0)
        self._vocab_by_prefix()

    # ---- query analysis ----------------------------------------------------------------
    def analyze(self, question: str, context: list[tuple[str, float]] = (), language: str | None = None) -> Query:
        """Embed the question (blended with weighted context from the conversation) and map its
        words to corpus terms."""
        idx = self.index
        language = language or textmod.detect_language(question)
        sources, question_for_words = self.source_mentions(question)
        items: list[tuple[str, float]] = [(w, 1.0) for w in dict.fromkeys(textmod.content_words(question_for_words, question=True))]
        entities = textmod.proper_names(question_for_words)
        for ctx_text, ctx_weight in context:
            items += [(w, ctx_weight) for w in dict.fromkeys(textmod.content_words(ctx_text, question=True)) if w not in dict(items)]
        texts = [question] + [c for c, _ in context] + [w for w, _ in items]
        vecs = self.embed(texts)
        qvec = vecs[0].copy()
        for (ctx_text, ctx_weight), v in zip(context, vecs[1 : 1 + len(context)]):
            qvec += ctx_weight * v
        qvec /= max(float(np.linalg.norm(qvec)), 1e-9)
        word_vecs = vecs[1 + len(context) :]
        max_idf = float(idx.idf.max()) if len(idx.idf) else 1.0
        sims = word_vecs @ idx.vocab_vectors.T if len(idx.vocab) and len(items) else np.zeros((len(items), 0))
        for i, (word, _) in enumerate(items):
            prefix = _compound_prefix(word)
            if prefix and sims.shape[1]:
                rows = self._vocab_by_prefix().get(prefix)
                if rows is not None:
                    sims[i, rows] += PREFIX_BONUS
        words = []
        for (word, weight), row in zip(items, sims):
            terms: dict[int, float] = {}
            # The question's own stemmer first; the other language's only when it finds nothing
            # (an English stemmer turns "sociétal" into "societ", which is "société").
            for lang in (language, "en" if language == "fr" else "fr"):
                t = idx.term_ids.get(textmod.stem(word, lang))
                if t is not None:
                    terms[t] = 1.0
                    break
            if row.size:
                # Same-stem matches need no translation: then only near-synonyms are added.
                floor = DIRECT_SYNONYM_MIN_SIM if terms else TRANSLATION_MIN_SIM
                top = np.argpartition(-row, min(TRANSLATIONS_PER_WORD, row.size - 1))[:TRANSLATIONS_PER_WORD]
                for j in top:
                    s = float(row[j])
                    if s >= floor:
                        t = idx.vocab_terms[j]
                        terms[t] = max(terms.get(t, 0.0), translation_strength(s))
            if terms:
                best = max(terms, key=lambda t: (terms[t], -idx.idf[t]))
                importance = float(idx.idf[best]) ** IDF_POWER
            else:
                importance = max_idf**IDF_POWER
            words.append(QueryWord(word, weight, terms, importance, entity=weight >= 1.0 and word in entities,
                                   sims=row if row.size else None))
        return Query(question, language, qvec, words, sources)

    def source_mentions(self, question: str) -> tuple[frozenset[str], str]:
        """Documents whose source the question names, and the question without those names."""
        if self._source_patterns is None:
            patterns = []
            for doc_id, doc in self.index.documents.items():
                for name in str(doc.get("source", "")).split(","):
                    name = name.strip()
                    if len(name) >= 3:
                        patterns.append((re.compile(rf"(?<!\w){re.escape(textmod.fold(name))}(?!\w)"), doc_id))
            self._source_patterns = patterns
        folded = textmod.fold(question)
        found, spans = set(), []
        for rx, doc_id in self._source_patterns:
            for m in rx.finditer(folded):
                found.add(doc_id)
                spans.append(m.span())
        if not found:
            return frozenset(), question
        # fold() keeps offsets for these scripts except for a few ligatures; cut on the folded text.
        chars = list(question) if len(folded) == len(question) else list(folded)
        for a, b in spans:
            for i in range(a, b):
                chars[i] = " "
        return frozenset(found), "".join(chars)

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
        return self._vector("sentence", self.index.sentence_index, sid)

    def chunk_vector(self, cid: int) -> np.ndarray:
        return self._vector("chunk", self.index.chunk_index, cid)

    def _vector(self, kind: str, index, row: int) -> np.ndarray:
        """A stored vector: from an in-memory copy for a corpus that fits, else from FAISS."""
        copy = self._vectors.get(kind)
        if copy is None and index.ntotal <= VECTOR_COPY_MAX:
            copy = self._vectors[kind] = index.reconstruct_n(0, index.ntotal)
        return copy[row] if copy is not None else index.reconstruct(int(row))

    def _vocab_by_prefix(self) -> dict[str, np.ndarray]:
        if self._prefix_rows is None:
            groups: dict[str, list[int]] = {}
            for i, w in enumerate(self.index.vocab):
                p = _compound_prefix(w)
                if p:
                    groups.setdefault(p, []).append(i)
            self._prefix_rows = {p: np.array(r, dtype=np.int64) for p, r in groups.items()}
        return self._prefix_rows

    def vocab_rows(self) -> dict[str, int]:
        if self._vocab_row is None:
            self._vocab_row = {w: i for i, w in enumerate(self.index.vocab)}
        return self._vocab_row

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings through a small LRU cache: questions and their words repeat a lot."""
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = dict(zip(missing, self.embedder.encode(missing)))
            found.update(fresh)
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > EMBED_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def sentence_vocab(self, sid: int) -> np.ndarray:
        """Vocabulary rows of the sentence's words, for soft (translated) word matching."""
        cached = self._sentence_vocab.get(sid)
        if cached is None:
            vocab_row = self.vocab_rows()
            rows = {vocab_row[w] for w in textmod.content_words(self.index.sentence_text(sid)) if w in vocab_row}
            cached = np.fromiter(sorted(rows), dtype=np.int64, count=len(rows))
            self._sentence_vocab[sid] = cached
        return cached

    def sentence_terms(self, sid: int) -> frozenset[int]:
        cached = self._sentence_terms.get(sid)
        if cached is None:
            s = self.index.sentences[sid]
            lang = self.index.documents[s.doc_id].get("language", "fr")
            ids = self.index.term_ids
            cached = frozenset(ids[t] for t in textmod.terms(self.index.sentence_text(sid), lang) if t in ids)
            self._sentence_terms[sid] = cached
        return cached
