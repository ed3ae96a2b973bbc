"""Candidate passages for a question, the second stage: dense rankings (every encoder, over
passages and sentences) and a lexical one (BM25 with cross-lingual term translation), fused by
reciprocal rank fusion. Everything goes through the ``store.Store`` interface.

Cross-lingual lexical matching needs no dictionary: every content word of the corpus is embedded
at build time with the primary multilingual encoder, and a question word is matched to the
corpus words nearest to it ("foundation" -> "fondation", "boss" -> "patron", "billion" ->
"milliards").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import centring
from . import lexicon
from . import questions as qmod
from . import text as textmod
from .cache import LRU

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "dense", "lexical")
RRF_K = 60
# A question word is translated to corpus words at least this similar (word vectors).
TRANSLATION_MIN_SIM = 0.55
NAME_TRANSLATION_MIN_SIM = 0.75
ROLE_MIN_COUNT, ROLE_MIN_SHARE = 2.0, 0.6  # a noun types a which-question when it clearly introduces one kind
ROLE_MIN_STRENGTH = 0.5  # the question word's terms whose names count (its own stem, close translations)
DICTIONARY_STRENGTH = 0.8  # a FreeDict translation counts this much (`summit fit` settings may change it)
TRANSLATIONS_PER_WORD = 3
EMBED_CACHE_SIZE = 20_000
WARM_UP_MAX_SENTENCES = 100_000
CENTROID_SAMPLE = 50_000
# With centred cosines (centring.py) the stored index ranks by the raw inner product: it is
# asked for this many times more rows, which are then ranked again by the centred cosine.
CENTRED_OVERSAMPLE = 4
# A store numbering its rows 0..n-1 (FAISS) up to this many rows per level keeps them centred in
# memory (exact centred search, as fast as the raw one); past it, or in Milvus, the above.
CENTRED_TABLE_MAX = 200_000
# Rare words say more about what a question asks than common ones.
IDF_POWER = 1.5
PREFIX_BONUS = 0.15
# Another inflection of the same word (simplemma lemmas): "tiendra" for "tient", "held" for
# "hold", which the stemmers keep apart. A little under a stem match: a lemma can be ambiguous.
LEMMA_STRENGTH = 0.9
_PREFIX = re.compile(r"^(co|vice|ex|non|pr[eé]|post|anti|multi|semi|sous|sub|super|inter|n[eé]o|contre|counter|auto|extra|micro|macro)-")


def _compound_prefix(word: str) -> str | None:
    m = _PREFIX.match(textmod.fold(word))
    return m.group(1) if m else None


def translation_strength(similarity: float) -> float:
    """How much a translated term counts: weak matches little, near-identical ones fully."""
    return float(min(1.0, max(0.0, (similarity - 0.45) / 0.45)))


@dataclass
class QueryWord:
    word: str
    weight: float  # 1 for the question's own words, less for context carried from history
    terms: dict[str, float]  # index term (stem) -> match strength (1 = same stem, else translation)
    importance: float  # idf of its best term, or the highest idf when nothing in the corpus matches
    entity: bool = False  # written as a proper name in the question ("Japon", "Zuckerberg")
    sims: np.ndarray | None = None  # similarity to every corpus vocabulary word

    @property
    def strength(self) -> float:
        return max(self.terms.values(), default=0.0)

    @property
    def own(self) -> bool:
        return self.weight >= 1.0


@dataclass
class Query:
    text: str
    language: str
    vectors: list[np.ndarray]  # one per encoder, context blended in
    words: list[QueryWord] = field(default_factory=list)
    qtype: qmod.QuestionType = qmod.QuestionType("other", None)
    sources: frozenset[str] = frozenset()  # documents whose publisher the question names
    forms: frozenset[str] = frozenset()  # folded words of the question and its conversation
    own_vectors: list[np.ndarray] = field(default_factory=list)  # the question alone, per encoder
    previous_sid: int | None = None  # the sentence that answered the previous question (follow-ups)
    previous_doc: str | None = None
    answered: frozenset[str] = frozenset()  # folded words of the conversation's earlier short answers
    cache: dict = field(default_factory=dict)
    latent: np.ndarray | None = None  # the question's own latent terms (Retriever.latent_code), if any

    @property
    def vector(self) -> np.ndarray:
        return self.vectors[0]

    def term_weights(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for w in self.words:
            for t, s in w.terms.items():
                out[t] = max(out.get(t, 0.0), s * w.weight)
        return out


@dataclass
class Candidate:
    chunk: int
    rrf: float = 0.0
    dense: float = 0.0  # best cosine of the chunk or one of its sentences (primary encoder)
    lexical: float = 0.0  # BM25 score
    rank: int = 0


@dataclass
class Retrieved:
    """What retrieval hands the answerer: the analysed question, the fused candidate passages,
    and where each sentence stood in the dense sentence rankings."""

    query: Query
    candidates: list[Candidate]
    sentence_ranks: dict[int, int]  # sid -> best rank over the encoders' sentence rankings
    mode: str


class Retriever:
    def __init__(self, store, encoders):
        from .embedding import EncoderSet

        self.store = store
        self.encoders = EncoderSet.of(encoders)
        if len(self.encoders) < store.n_encoders:
            raise ValueError("the index holds more encoders than are loaded")
        self._sentence_vocab: dict[int, np.ndarray] = {}
        self._sentence_terms: dict[int, frozenset[str]] = {}
        self._vocab_row: dict[str, int] | None = None
        self._prefix_rows: dict[str, np.ndarray] | None = None
        self._lemma_terms: dict[tuple[str, str], tuple[str, ...]] | None = None
        self._source_patterns: list[tuple[re.Pattern, str]] | None = None
        self._caches = [LRU(EMBED_CACHE_SIZE) for _ in range(store.n_encoders)]
        self._latent_cache = LRU(EMBED_CACHE_SIZE)
        self._category_vectors: dict[str, np.ndarray] = {}
        self.dictionary_strength = DICTIONARY_STRENGTH
        self._centroids: dict[int, np.ndarray] = {}
        # Language centring (centring.py): fitted question means per encoder (weights.json, set
        # by set_query_means); an encoder without them compares raw vectors.
        self.query_means: dict[int, dict[str, np.ndarray]] = {}
        self._passage_means: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        self._row_language: dict[tuple[str, int], str] = {}
        self._mean_tables: dict[tuple[int, str], tuple[dict[str, int], np.ndarray]] = {}
        self._centred_tables: dict[tuple[int, str], np.ndarray | None] = {}

    # ---- language centring ----------------------------------------------------------------
    def set_query_means(self, by_encoder_id: dict | None) -> None:
        """Install the fitted question means ({encoder id: {language: vector}}); an encoder whose
        id has none (another model than the one fitted) keeps raw cosines."""
        means: dict[int, dict[str, np.ndarray]] = {}
        for e, eid in enumerate(self.encoders.ids[: self.store.n_encoders]):
            got = (by_encoder_id or {}).get(eid)
            dim = getattr(self.encoders.members[e], "dimension", None)
            if got:
                vecs = {lang: np.asarray(v, dtype=np.float32) for lang, v in got.items()}
                if not isinstance(dim, int) or all(v.shape == (dim,) for v in vecs.values()):
                    means[e] = vecs
        self.query_means = means

    def row_language(self, level: str, rid: int) -> str:
        key = (level, int(rid))
        got = self._row_language.get(key)
        if got is None:
            rec = self.store.sentence(rid) if level == "sentence" else self.store.chunk(rid)
            got = self._row_language[key] = str((self.store.document(rec.doc_id) or {}).get("language") or "")
        return got

    def passage_means(self, encoder: int, level: str) -> dict[str, np.ndarray]:
        """The corpus's mean vector per document language (centring.passage_means), from at
        most CENTROID_SAMPLE rows."""
        key = (encoder, level)
        got = self._passage_means.get(key)
        if got is None:
            ids = list(self.store.ids(level))
            if len(ids) > CENTROID_SAMPLE:
                ids = sorted(np.random.default_rng(0).choice(ids, CENTROID_SAMPLE, replace=False).tolist())
            vecs = self.store.vectors(encoder, level, ids) if ids else np.zeros((0, 1), np.float32)
            got = self._passage_means[key] = centring.passage_means(vecs, [self.row_language(level, r) for r in ids])
        return got

    def centred_query(self, query: "Query", encoder: int) -> np.ndarray:
        """The question's vector (its conversation blended in) without its language's question mean."""
        memo = query.cache.setdefault("centred", {})
        got = memo.get(encoder)
        if got is None:
            got = memo[encoder] = centring.centre_query(query.vectors[encoder], self.query_means[encoder], query.language)
        return got

    def cosines(self, query: "Query", encoder: int, level: str, ids) -> np.ndarray:
        """The question's cosine with stored rows: language-centred when the encoder has fitted
        question means, else the raw cosine."""
        ids = list(ids)
        if encoder not in self.query_means or not ids:
            return self.store.vectors(encoder, level, ids) @ query.vectors[encoder]
        table = self._centred_table(encoder, level)
        if table is not None:
            return table[np.asarray(ids, dtype=np.int64)] @ self.centred_query(query, encoder)
        vecs = self.store.vectors(encoder, level, ids)
        return centring.centred_cosines(self.centred_query(query, encoder), vecs, self._row_means(encoder, level, ids))

    def _centred_table(self, encoder: int, level: str) -> np.ndarray | None:
        """Every row of a level centred and unit length, for a store whose rows are numbered
        0..n-1 and not more than CENTRED_TABLE_MAX (the FAISS store); None otherwise (rows are then
        centred as they are read)."""
        key = (encoder, level)
        if key in self._centred_tables:
            return self._centred_tables[key]
        ids = self.store.ids(level)
        table = None
        if isinstance(ids, range) and ids.start == 0 and ids.step == 1 and 0 < len(ids) <= CENTRED_TABLE_MAX:
            vecs = np.asarray(self.store.vectors(encoder, level, ids), dtype=np.float32)
            table = centring.unit(vecs - self._row_means(encoder, level, list(ids))).astype(np.float32)
        self._centred_tables[key] = table
        return table

    def _row_means(self, encoder: int, level: str, ids: list) -> np.ndarray:
        """Each row's language mean (passage_means), one row per id."""
        key = (encoder, level)
        table = self._mean_tables.get(key)
        if table is None:
            means = self.passage_means(encoder, level)
            names = list(means)
            table = self._mean_tables[key] = ({name: i for i, name in enumerate(names)}, np.stack([means[n] for n in names]))
        position, matrix = table
        default = position.get("", 0)
        ix = np.fromiter((position.get(self.row_language(level, r), default) for r in ids), dtype=np.int64, count=len(ids))
        return matrix[ix]

    def _dense(self, query: "Query", encoder: int, level: str, k: int) -> list[tuple[int, float]]:
        """The store's dense ranking of a level, by the centred cosine when the encoder centres."""
        if encoder not in self.query_means:
            return self.store.dense(encoder, level, query.vectors[encoder], k)
        table = self._centred_table(encoder, level)
        if table is not None:  # exact: every row
            scores = table @ self.centred_query(query, encoder)
            k = min(k, len(scores))
            if k <= 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(int(r), float(scores[r])) for r in top]
        hits = self.store.dense(encoder, level, self.centred_query(query, encoder), k * CENTRED_OVERSAMPLE)
        if not hits:
            return []
        ids = [r for r, _ in hits]
        ranked = sorted(zip(ids, self.cosines(query, encoder, level, ids).tolist()), key=lambda kv: -kv[1])
        return ranked[:k]

    def centroid(self, encoder: int) -> np.ndarray:
        """The corpus's mean sentence direction for an encoder: how typical of these articles a
        question is (an off-topic question points elsewhere). A store may provide it; else it is
        the mean of (at most CENTROID_SAMPLE) stored sentence vectors."""
        got = self._centroids.get(encoder)
        if got is None:
            provided = getattr(self.store, "centroid", None)
            if provided is not None:
                got = np.asarray(provided(encoder), dtype=np.float32)
            else:
                n = self.store.counts()["sentences"]
                ids = range(n) if n <= CENTROID_SAMPLE else np.random.default_rng(0).choice(n, CENTROID_SAMPLE, replace=False)
                vecs = self.store.vectors(encoder, "sentence", ids)
                got = vecs.mean(axis=0) if len(vecs) else np.zeros(vecs.shape[1], np.float32)
            got = got / max(float(np.linalg.norm(got)), 1e-9)
            self._centroids[encoder] = got
        return got

    def warm_up(self) -> None:
        """Precompute per-sentence tables for a small corpus, so the first questions are as fast
        as the rest (a large corpus fills them on demand)."""
        counts = self.store.counts()
        if counts["sentences"] > WARM_UP_MAX_SENTENCES:
            return
        first = {}
        for sid in self.store.ids("sentence"):  # ids need not be contiguous (store.Store.ids)
            first.setdefault("sentence", sid)
            self.sentence_terms(sid)
            self.sentence_vocab(sid)
        if counts["chunks"]:
            first["chunk"] = next(iter(self.store.ids("chunk")))
        for e in range(self.store.n_encoders):
            for level, rid in first.items():
                self.store.vectors(e, level, [rid])
        self._vocab_by_prefix()
        self._vocab_by_lemma()
        for e in range(self.store.n_encoders):
            self.centroid(e)
            if e in self.query_means:
                for level in first:
                    if self._centred_table(e, level) is None:
                        self.passage_means(e, level)

    # ---- query analysis ----------------------------------------------------------------
    def analyze(self, question: str, context: list[tuple[str, float]] = (), language: str | None = None,
                history: list[str] = ()) -> Query:
        """Embed the question with every encoder (blended with weighted context from the
        conversation), type it, and map its words to corpus terms."""
        store = self.store
        language = language or textmod.detect_language(question)
        sources, question_for_words = self.source_mentions(question)
        own = list(dict.fromkeys(textmod.content_words(question_for_words, question=True)))
        items: list[tuple[str, float]] = [(w, 1.0) for w in own]
        seen = set(own)
        entities = textmod.proper_names(question_for_words)
        for ctx_text, ctx_weight in context:
            for w in dict.fromkeys(textmod.content_words(ctx_text, question=True)):
                if w not in seen:
                    seen.add(w)
                    items.append((w, ctx_weight))
        # Question and context sentences with every encoder; words with the primary one, as
        # written (a name's capital matters to a multilingual encoder).
        written: dict[str, str] = {}
        for text in [question_for_words] + [c for c, _ in context]:
            for surface in textmod.words(text):
                written.setdefault(surface.lower(), surface)
        texts = [question] + [c for c, _ in context]
        self._embed_with_latent(question)
        vectors, own_vectors = [], []
        word_vecs = None
        # the words a which-question may be typed by go in the same batch (questions.analyse)
        head_words = [w for w in qmod.head_order(question, language) if w not in seen]
        for e in range(store.n_encoders):
            extra = [written.get(w, w) for w, _ in items] if e == 0 else []
            vecs = self.embed(e, texts + extra + (head_words if e == 0 else []))
            q = vecs[0].copy()
            for (_, ctx_weight), v in zip(context, vecs[1 : 1 + len(context)]):
                q += ctx_weight * v
            q /= max(float(np.linalg.norm(q)), 1e-9)
            vectors.append(q)
            own_vectors.append(vecs[0])
            if e == 0:
                word_vecs = vecs[len(texts) : len(texts) + len(extra)]
        vocab_vectors = store.vocab_vectors
        sims = word_vecs @ vocab_vectors.T if len(vocab_vectors) and len(items) else np.zeros((len(items), 0), np.float32)
        for i, (word, _) in enumerate(items):
            prefix = _compound_prefix(word)
            if prefix and sims.shape[1]:
                rows = self._vocab_by_prefix().get(prefix)
                if rows is not None:
                    sims[i, rows] += PREFIX_BONUS
        max_idf = store.max_idf
        words = []
        other = "en" if language == "fr" else "fr"
        for (word, weight), row in zip(items, sims):
            terms: dict[str, float] = {}
            # Same stem in the question's language, or in the other one (the corpus holds both).
            for lang in (language, other):
                t = textmod.stem(word, lang)
                if store.term_idf(t) is not None:
                    terms[t] = 1.0
            is_name = weight >= 1.0 and word in entities
            found_as_written = bool(terms)
            for t in self._vocab_by_lemma().get((language, lexicon.lemma(word, language)), ()):
                terms.setdefault(t, LEMMA_STRENGTH)
            # A name found as written needs no word-vector translation; one that is not ("Korea"
            # for "Corée") takes only a close word vector, never a loose one. Either takes its
            # dictionary entry: a bilingual corpus has "China" in its English articles and
            # "Chine" in its French ones.
            for tr in lexicon.translations(word, language):
                for part in textmod.content_words(tr):
                    t = textmod.stem(part, other)
                    if store.term_idf(t) is not None:
                        terms[t] = max(terms.get(t, 0.0), self.dictionary_strength)
            if not (is_name and found_as_written):
                if row.size:
                    floor = NAME_TRANSLATION_MIN_SIM if is_name else TRANSLATION_MIN_SIM
                    top = np.argpartition(-row, min(TRANSLATIONS_PER_WORD, row.size - 1))[:TRANSLATIONS_PER_WORD]
                    for j in top:
                        sim = float(row[j])
                        if sim >= floor:
                            t = store.term_of(int(j))
                            terms[t] = max(terms.get(t, 0.0), translation_strength(sim))
            if terms:
                best = max(terms, key=lambda t: (terms[t], -(store.term_idf(t) or 0.0)))
                importance = float(store.term_idf(best) or max_idf) ** IDF_POWER
            else:
                importance = max_idf**IDF_POWER
            words.append(QueryWord(word, weight, terms, importance, entity=is_name,
                                   sims=row if row.size and not is_name else None))
        by_word = {w.word: w for w in words}
        qtype = qmod.analyse(question, self.category_similarity, lambda head: self.corpus_type(by_word.get(head)), language)
        forms = set()
        for text in [question, *history]:
            for w in textmod.words(text):
                forms.add(textmod.fold(w))
                forms.update(textmod.fold(p) for p in w.split("-"))
        return Query(question, language, vectors, words, qtype, sources, frozenset(forms), own_vectors,
                     latent=self.latent_code(question))

    def corpus_type(self, word: QueryWord | None) -> str | None:
        """What kind of name a question noun introduces in this corpus (store.roles): its terms'
        counts, weighted by match strength; a clear majority of at least two occurrences."""
        if word is None:
            return None
        counts: dict[str, float] = {}
        for t, strength in word.terms.items():
            if strength < ROLE_MIN_STRENGTH:
                continue  # a loose translation's names say little about the word asked
            for label, n in self.store.roles(t).items():
                counts[label] = counts.get(label, 0.0) + strength * n
        total = sum(counts.values())
        if total < ROLE_MIN_COUNT:
            return None
        label, n = max(counts.items(), key=lambda kv: kv[1])
        return {"PER": "person", "ORG": "org", "LOC": "place"}[label] if n / total >= ROLE_MIN_SHARE else None

    def category_similarity(self, word: str, category_words: list[str]) -> float:
        """Best cosine of a word with some category words (primary encoder word vectors)."""
        key = "\x00".join(category_words)
        cat = self._category_vectors.get(key)
        if cat is None:
            cat = self._category_vectors[key] = self.embed(0, category_words)
        v = self.embed(0, [word])[0]
        return float((cat @ v).max())

    def source_mentions(self, question: str) -> tuple[frozenset[str], str]:
        """Documents whose source the question names, and the question without those names."""
        if self._source_patterns is None:
            patterns = []
            for doc in self.store.document_list():
                for name in str(doc.get("source", "")).split(","):
                    name = name.strip()
                    if 3 <= len(name) <= 40:
                        patterns.append((re.compile(rf"(?<!\w){re.escape(textmod.fold(name))}(?!\w)"), doc["doc_id"]))
            self._source_patterns = patterns
        folded = textmod.fold(question)
        found, spans = set(), []
        for rx, doc_id in self._source_patterns:
            for m in rx.finditer(folded):
                found.add(doc_id)
                spans.append(m.span())
        if not found:
            return frozenset(), question
        chars = list(question) if len(folded) == len(question) else list(folded)
        for a, b in spans:
            for i in range(a, b):
                chars[i] = " "
        return frozenset(found), "".join(chars)

    # ---- candidate generation -----------------------------------------------------------
    def dense_chunks(self, query: Query, n: int, sentence_ranks: dict[int, int] | None = None) -> list[list[tuple[int, float]]]:
        """One ranking of chunks per encoder: a chunk scores its own cosine or its best sentence's."""
        store = self.store
        rankings = []
        for e in range(store.n_encoders):
            scores: dict[int, float] = {}
            for c, s in self._dense(query, e, "chunk", n):
                scores[c] = max(scores.get(c, -1.0), s)
            for rank, (sid, s) in enumerate(self._dense(query, e, "sentence", n * 2)):
                if sentence_ranks is not None:
                    sentence_ranks[sid] = min(sentence_ranks.get(sid, rank), rank)
                for c in store.sentence(sid).chunk_ids:
                    scores[c] = max(scores.get(c, -1.0), s)
            rankings.append(sorted(scores.items(), key=lambda kv: -kv[1])[:n])
        return rankings

    def lexical_chunks(self, query: Query, n: int) -> list[tuple[int, float]]:
        weights = query.term_weights()
        if not weights:
            return []
        return self.store.lexical(weights, n, [w.word for w in query.words])

    def retrieve(self, query: Query, mode: Mode = "hybrid", n: int = 30) -> Retrieved:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        found: dict[int, Candidate] = {}
        lists = []
        sentence_ranks: dict[int, int] = {}
        if mode in ("hybrid", "dense"):
            for e, ranking in enumerate(self.dense_chunks(query, n, sentence_ranks)):
                lists.append(ranking)
                for c, s in ranking:
                    cand = found.setdefault(c, Candidate(c))
                    if e == 0:
                        cand.dense = s
        if mode in ("hybrid", "lexical"):
            lexical = self.lexical_chunks(query, n)
            lists.append(lexical)
            for c, s in lexical:
                found.setdefault(c, Candidate(c)).lexical = s
        for ranked in lists:
            for rank, (c, _) in enumerate(ranked):
                found[c].rrf += 1.0 / (RRF_K + rank + 1)
        ranked = sorted(found.values(), key=lambda cand: -cand.rrf)
        for i, c in enumerate(ranked):
            c.rank = i
        return Retrieved(query, ranked, sentence_ranks, mode)

    # ---- per-sentence tables ------------------------------------------------------------
    def _vocab_by_prefix(self) -> dict[str, np.ndarray]:
        if self._prefix_rows is None:
            groups: dict[str, list[int]] = {}
            for i, w in enumerate(self.store.vocab):
                p = _compound_prefix(w)
                if p:
                    groups.setdefault(p, []).append(i)
            self._prefix_rows = {p: np.array(r, dtype=np.int64) for p, r in groups.items()}
        return self._prefix_rows

    def _vocab_by_lemma(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """Corpus terms by (language, lemma) of their vocabulary words. A word is lemmatised in
        the language whose stemmer gives its term, the language it was indexed in (both when
        they agree), so an English question word never reaches a French word through English
        lemma tables."""
        if self._lemma_terms is None:
            groups: dict[tuple[str, str], set[str]] = {}
            for i, w in enumerate(self.store.vocab):
                term = self.store.term_of(i)
                for lang in ("fr", "en"):
                    if textmod.stem(w, lang) == term:
                        groups.setdefault((lang, lexicon.lemma(w, lang)), set()).add(term)
            self._lemma_terms = {k: tuple(sorted(v)) for k, v in groups.items()}
        return self._lemma_terms

    def vocab_rows(self) -> dict[str, int]:
        if self._vocab_row is None:
            self._vocab_row = {w: i for i, w in enumerate(self.store.vocab)}
        return self._vocab_row

    def embed(self, encoder: int, texts: list[str]) -> np.ndarray:
        """Question-side embeddings through a small LRU cache per encoder: questions and their
        words repeat a lot."""
        cache = self._caches[encoder]
        found = cache.get_many(dict.fromkeys(texts))
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = dict(zip(missing, self.encoders[encoder].encode(missing, query=True)))
            found.update(fresh)
            cache.put_many(fresh)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def _latent_encoder(self) -> int | None:
        """Which loaded encoder codes latent terms for this index, or None."""
        spec = (getattr(self.store, "manifest", None) or {}).get("latent_terms")
        if not spec or spec["encoder"] >= len(self.encoders):
            return None
        return spec["encoder"] if getattr(self.encoders[spec["encoder"]], "has_latent_terms", False) else None

    @staticmethod
    def _dense_code(encoder, ids, weights) -> np.ndarray:
        code = np.zeros(encoder.latent_dim, dtype=np.float32)
        code[ids] = weights
        return code

    def _embed_with_latent(self, question: str) -> None:
        """Embed the question and code its latent terms in one pass (the fused engine), into
        both caches, when the index has codes and neither cache holds the question yet."""
        e = self._latent_encoder()
        if e is None or question in self._latent_cache or question in self._caches[e]:
            return
        encoder = self.encoders[e]
        vectors, codes = encoder.encode_with_latent([question], query=True)
        self._caches[e].put(question, vectors[0])
        self._latent_cache.put(question, self._dense_code(encoder, *codes[0]))

    def latent_code(self, question: str) -> np.ndarray | None:
        """The question's latent terms as a dense code (index.latent_matrix's width), when the
        index holds the sentences' codes and their encoder is loaded; else None."""
        e = self._latent_encoder()
        if e is None:
            return None
        got = self._latent_cache.get(question)
        if got is None:
            encoder = self.encoders[e]
            got = self._dense_code(encoder, *encoder.latent_terms([question], query=True)[0])
            self._latent_cache.put(question, got)
        return got

    def sentence_vocab(self, sid: int) -> np.ndarray:
        """Vocabulary rows of the sentence's words, for soft (translated) word matching."""
        cached = self._sentence_vocab.get(sid)
        if cached is None:
            vocab_row = self.vocab_rows()
            rows = {vocab_row[w] for w in textmod.content_words(self.store.sentence_text(sid)) if w in vocab_row}
            cached = np.fromiter(sorted(rows), dtype=np.int64, count=len(rows))
            self._sentence_vocab[sid] = cached
        return cached

    def sentence_terms(self, sid: int) -> frozenset[str]:
        cached = self._sentence_terms.get(sid)
        if cached is None:
            s = self.store.sentence(sid)
            lang = (self.store.document(s.doc_id) or {}).get("language", "fr")
            cached = frozenset(textmod.terms(self.store.sentence_text(sid), lang))
            self._sentence_terms[sid] = cached
        return cached

    def word_matches(self, query: Query, sid: int) -> np.ndarray:
        """How well each question word is matched in sentence ``sid``: 1 for the same stem, else
        the strength of its best translation among the sentence's words."""
        memo = query.cache.setdefault("matches", {})
        got = memo.get(sid)
        if got is not None:
            return got
        terms = self.sentence_terms(sid)
        rows = self.sentence_vocab(sid)
        out = np.zeros(len(query.words), dtype=np.float32)
        for i, w in enumerate(query.words):
            direct = max((s for t, s in w.terms.items() if t in terms), default=0.0)
            soft = translation_strength(float(w.sims[rows].max())) if (w.sims is not None and rows.size) else 0.0
            out[i] = max(direct, soft)
        memo[sid] = out
        return out
