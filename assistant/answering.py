"""From candidate passages to an answer: score every sentence of the best passages, pick the one
that answers, cut a short span when the question asks for a typed thing (a person, an amount, a
count, a date, a place, an organisation), number the citations, or abstain."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import text as textmod
from .retrieval import Candidate, Query, Retriever, translation_strength

NOT_FOUND = {
    "fr": "Je ne trouve pas la réponse à cette question dans mes sources.",
    "en": "I could not find the answer to this question in my sources.",
}

# Question type -> patterns that recognise it at the start (or inside) the question.
_QTYPES: list[tuple[str, re.Pattern]] = [
    ("money", re.compile(r"\b(how much|combien (?:d['’]argent|d['’]euros|de dollars|coûte|vaut|pèse)|quel(?:le)? (?:montant|somme|budget)|what (?:amount|sum|budget)|how big (?:is|was) the (?:budget|fund))", re.I)),
    ("count", re.compile(r"\b(how many|combien|quel nombre|what number)\b", re.I)),
    ("date", re.compile(r"\b(when|quand|what date|which date|what day|which day|what year|which year|quelle date|quel jour|quelle année|en quelle année|à quelle date|dates?\b.*\?)", re.I)),
    ("place", re.compile(r"(\bwhere\b|(?:^|\s)où\b|\bwhich(?:\s+[\w-]+)?\s+(?:city|place|venue|building|site|region)\b|\bquel(?:le)?s?(?:\s+[\w-]+)?\s+(?:ville|lieu|endroit|bâtiment|site|région)\b|\bdans quel(?:le)? (?:ville|lieu|pays)\b)", re.I)),
    ("org", re.compile(r"\b(which (?:company|firm|startup|start-up|organisation|organization|group)|what (?:company|firm|startup|organisation|organization)|quel(?:le)? (?:entreprise|société|start-?up|organisation|groupe|firme))\b", re.I)),
    ("person", re.compile(r"(\bwho\b|\bwhom\b|\bwhose\b|^\s*(?:et\s+)?qui\b|\b(?:par|de|à|avec) qui\b|\bquel(?:le)?s?(?:\s+[\w-]+)?\s+(?:personnalités?|dirigeants?|responsables?|patrons?|ministres?|présidents?|vice-présidents?|porte-parole|ambassadeurs?|représentants?|délégués?|chercheurs?|personnes?|entrepreneurs?|fondateurs?|cofondateurs?|directeurs?|scientifiques?|chefs?|invités?|figures?|leaders?)\b|\b(?:which|what)(?:\s+[\w-]+){0,2}?\s+(?:person|people|leaders?|officials?|ministers?|executives?|boss|bosses|presidents?|vice-presidents?|chairs?|chairman|chairwoman|spokes(?:person|man|woman)|ambassadors?|envoys?|delegates?|representatives?|researchers?|scientists?|entrepreneurs?|founders?|co-?founders?|directors?|heads?|chiefs?|guests?|figures?|ceos?|politicians?)\b|\bqui est\b|\bqui sont\b|\bqui\s+(?:va|vont|sera|seront|dirige|représente|co-?préside|préside|a|ont)\b)", re.I)),
]

_DEFINITION = re.compile(
    r"^\s*(?i:who|what)\s+(?i:is|are|was|were)\s+(?:[A-Z][\w.'’-]*\s*){1,4}\??\s*$"
    r"|^\s*(?i:qui|qu['’]est-ce que|que)\s+(?i:est|sont|était|c['’]est)\s+(?:[A-ZÀ-Þ][\w.'’-]*\s*){1,4}\??\s*$"
)

# A sentence opening that refers to something named just before.
_REFERS_BACK = re.compile(
    r"\b(?:cette|cet|ces|ce dernier|cette dernière|ces derniers|celui-ci|celle-ci|l['’]instance|"
    r"l['’]organisation|la structure|il|elle|ils|elles|this|these|that|it|they|he|she|the latter)\b",
    re.I,
)
COREFERENCE_DISCOUNT = 0.8

SPAN_PATTERNS = {
    "money": textmod.MONEY_SPAN,
    "count": textmod.COUNT_SPAN,
    "date": textmod.DATE_SPAN,
    "place": textmod.PLACE_SPAN,
    "person": textmod.NAME_SPAN,
    "org": textmod.NAME_SPAN,
}

# Weights of the sentence score (calibrated on eval/dev.jsonl, see README "Calibration").
W_DENSE = 1.0  # cosine of question and sentence (blended with its passage)
W_COVER = 1.0  # idf-weighted share of the question's words found (same stem or translated)
W_CONTEXT = 0.3  # how much the surrounding passage counts next to the sentence itself
W_RRF = 0.1  # the passage's fused retrieval rank
W_TYPE = 0.1  # a person / place / organisation of the asked type is in the sentence
W_TYPE_STRICT = 0.2  # an amount / count / date of the asked type is in the sentence
W_TYPE_MISSING = 0.1  # ... and is not
W_SOURCE = 0.15  # the question names this passage's publisher
W_MISSING_ENTITY = 0.3  # per proper name of the question the sources never mention
ENTITY_MIN_STRENGTH = 0.4
SPAN_SEARCH_DEPTH = 12  # sentences searched for a typed answer span
ANCHOR_MIN_SIM = 0.45 + 0.45 * 0.35  # translation strength 0.35
_TOKEN = re.compile(r"[\w’'-]+")
STRICT_TYPES = frozenset({"money", "count", "date", "place"})
# Single-signal modes stand in a typical value for the signal they do not use.
DENSE_STANDIN, COVER_STANDIN = 0.25, 0.35


def question_type(question: str) -> str | None:
    """The type of thing asked for, from the question word that comes first ("Where was he
    when ..." asks for a place)."""
    if _DEFINITION.search(question):
        return None  # "Who is Arthur Mensch?" asks for a description: answer with the sentence
    best: tuple[int, int, str] | None = None
    for order, (name, rx) in enumerate(_QTYPES):
        m = rx.search(question)
        if m and (best is None or (m.start(), order) < best[:2]):
            best = (m.start(), order, name)
    return best[2] if best else None


@dataclass
class Citation:
    n: int
    chunk_id: str
    doc_id: str
    title: str
    source: str
    url: str | None
    published: str | None
    passage: str
    start: int
    end: int
    highlights: list[list[int]]
    score: float


@dataclass
class Answer:
    question: str
    language: str
    found: bool
    answer: str
    citations: list[Citation] = field(default_factory=list)
    took_ms: float = 0.0
    # Not part of the public object: what the follow-up logic and evaluation look at.
    confidence: float = 0.0
    span_type: str | None = None

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "language": self.language,
            "found": self.found,
            "answer": self.answer,
            "citations": [c.__dict__ for c in self.citations],
            "took_ms": self.took_ms,
        }


@dataclass
class ScoredSentence:
    sid: int
    chunk: int
    score: float
    dense: float
    coverage: float
    span: str | None
    own_coverage: float = 0.0


def _question_forms(query: Query) -> set[str]:
    """Folded words of the question and of the conversation context: a name already mentioned
    there is the subject of the question, not its answer."""
    cached = query.cache.get("forms")
    if cached is not None:
        return cached
    forms = query.cache["forms"] = set()
    for w in query.words:
        forms.add(textmod.fold(w.word))
        forms.update(textmod.fold(p) for p in w.word.split("-"))
    return forms


def _clean_span(span: str, kind: str, question_forms: set[str]) -> str | None:
    span = span.strip(" ,;:.«»\"'’")
    if kind == "place":
        span = re.sub(r"^(?:à|au|aux|en|dans|sur|in|at)\s+", "", span, flags=re.I)
    if kind in ("person", "org"):
        # Names run together ("Mistral AI Arthur Mensch"): drop the words the question or the
        # conversation already names, keep the longest run left ("Mistral AI" when asking which
        # company Arthur Mensch co-founded), and drop short acronyms left dangling at its start.
        runs, run = [], []
        for tok in span.split():
            if textmod.fold(tok) in question_forms:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(tok)
        if run:
            runs.append(run)
        # Initials left alone ("J.D." once "Vance" is known) are not an answer.
        runs = [r for r in runs if not all(re.fullmatch(r"(?:[A-ZÀ-Þ]\.-?)+", t) for t in r)]
        if not runs:
            return None
        toks = max(runs, key=len)
        while toks and toks[0].lower() in textmod.STOPWORDS:  # "Le Prix Turing" -> "Prix Turing"
            toks = toks[1:]
        if not toks or (kind == "person" and len(toks) < 2 and "." not in toks[0]):
            return None
        if len(toks) == 1 and len(toks[0]) <= 2:
            return None  # a bare two-letter acronym ("IA") is noise, not a name
        while len(toks) > 1 and toks[0].isupper() and len(toks[0]) <= 3 and len(runs) > 1:
            toks = toks[1:]
        span = " ".join(toks)
        if not span or all(textmod.fold(t) in question_forms or t.lower() in textmod.STOPWORDS for t in span.split()):
            return None
    if not span or textmod.fold(span) in question_forms:
        return None
    return span


def extract_span(sentence: str, kind: str | None, query: Query, anchor_positions: list[int]) -> str | None:
    """The short answer of type ``kind`` in ``sentence``: the candidate span nearest to where the
    question's words matched, not one the question already contains."""
    if kind is None:
        return None
    forms = _question_forms(query)
    found = []
    date_spans = [m.span() for m in textmod.DATE_SPAN.finditer(sentence)] if kind == "count" else []
    for m in SPAN_PATTERNS[kind].finditer(sentence):
        a, b = m.span()
        if kind in ("person", "org"):
            if a == 0 and " " not in m.group():
                continue  # a capitalised first word is usually just the start of the sentence
            if kind == "person" and len(m.group().split()) < 2 and not re.search(r"\.", m.group()):
                continue  # a person is named with at least two words or an initial
        if any(a < db and da < b for da, db in date_spans):
            continue
        span = _clean_span(m.group(), kind, forms)
        if span:
            # News style names a role, then the person or thing ("le cofondateur de Mistral AI
            # Arthur Mensch"): a candidate after a matched word is preferred to one before it.
            distance = min((a - p if a >= p else 2 * (p - b) + 1 for p in anchor_positions), default=0)
            found.append((distance, a, span))
    if not found:
        return None
    found.sort()
    if kind in ("person", "org") and len({f[2] for f in found}) > 1:
        # Several names and nothing says which one answers: the sentence is the honest answer.
        if not anchor_positions or found[0][0] * 2 > found[1][0]:
            return None
    return found[0][2]


class Answerer:
    def __init__(self, retriever: Retriever, min_confidence: float):
        self.retriever = retriever
        self.min_confidence = min_confidence

    def word_matches(self, query: Query, sid: int) -> np.ndarray:
        """How well each question word is matched in sentence ``sid``: 1 for the same stem, else
        the strength of its best translation among the sentence's words. A sentence that refers
        back ("cette instance", "ce dernier", "it") also gets, discounted, the matches of the
        sentence before it: "Dotée de 2,5 milliards d'euros, cette instance ..." is about the
        foundation its previous sentence names."""
        own = self._own_matches(query, sid)
        idx = self.retriever.index
        if sid > 0 and idx.sentences[sid - 1].doc_id == idx.sentences[sid].doc_id and _REFERS_BACK.search(
            idx.sentence_text(sid)[:80]
        ):
            own = np.maximum(own, COREFERENCE_DISCOUNT * self._own_matches(query, sid - 1))
        return own

    def _own_matches(self, query: Query, sid: int) -> np.ndarray:
        terms = self.retriever.sentence_terms(sid)
        rows = self.retriever.sentence_vocab(sid)
        out = np.zeros(len(query.words), dtype=np.float32)
        for i, w in enumerate(query.words):
            direct = max((s for t, s in w.terms.items() if t in terms), default=0.0)
            soft = translation_strength(float(w.sims[rows].max())) if (w.sims is not None and rows.size) else 0.0
            out[i] = max(direct, soft)
        return out

    @staticmethod
    def coverage(query: Query, matches: np.ndarray, *, own_only: bool = False) -> float:
        """Share of the question's meaning (idf-weighted words) that the matches hold."""
        total = got = 0.0
        for w, m in zip(query.words, matches):
            if own_only and w.weight < 1.0:
                continue
            imp = w.importance * w.weight
            total += imp
            got += imp * float(m)
        return got / total if total else 0.0

    @staticmethod
    def type_adjustment(kind: str | None, span: str | None) -> float:
        """The answer sentence should hold a thing of the asked type; names are found less
        reliably than amounts, counts, dates and places, so they weigh less."""
        if kind is None:
            return 0.0
        if kind in STRICT_TYPES:
            return W_TYPE_STRICT if span else -W_TYPE_MISSING
        return W_TYPE if span else -W_TYPE_MISSING / 2

    @staticmethod
    def missing_entity_penalty(query: Query) -> float:
        """Names in the question that the sources never mention: a strong sign they do not cover it."""
        missing = sum(1 for w in query.words if w.entity and w.strength < ENTITY_MIN_STRENGTH)
        return W_MISSING_ENTITY * missing

    def score_sentences(self, query: Query, cands: list[Candidate], kind: str | None, mode: str) -> list[ScoredSentence]:
        """Score every sentence of the candidate passages; look for a typed answer span only in
        the best few (span extraction is the costly part)."""
        idx = self.retriever.index
        by_sid: dict[int, ScoredSentence] = {}
        max_rrf = max((c.rrf for c in cands), default=1.0) or 1.0
        for cand in cands:
            chunk = idx.chunks[cand.chunk]
            chunk_dense = float(self.retriever.chunk_vector(cand.chunk) @ query.vector)
            matches = {sid: self.word_matches(query, sid) for sid in chunk.sentence_ids}
            chunk_matches = np.max(np.stack(list(matches.values())), axis=0)
            for sid in chunk.sentence_ids:
                own_dense = float(self.retriever.sentence_vector(sid) @ query.vector)
                dense = (1 - W_CONTEXT) * own_dense + W_CONTEXT * chunk_dense
                m = (1 - W_CONTEXT) * matches[sid] + W_CONTEXT * chunk_matches
                coverage = self.coverage(query, m)
                d = dense if mode != "lexical" else DENSE_STANDIN
                cov = coverage if mode != "dense" else COVER_STANDIN
                score = W_DENSE * d + W_COVER * cov + W_RRF * cand.rrf / max_rrf
                if query.sources and chunk.doc_id in query.sources:
                    score += W_SOURCE
                prev = by_sid.get(sid)
                if prev is None or score > prev.score:  # a sentence in two overlapping chunks: keep the better
                    by_sid[sid] = ScoredSentence(sid, cand.chunk, score, dense, coverage, None,
                                                 own_coverage=self.coverage(query, m, own_only=True))
        ranked = sorted(by_sid.values(), key=lambda s: -s.score)
        if kind is not None:
            for s in ranked[:SPAN_SEARCH_DEPTH]:
                text = idx.sentence_text(s.sid)
                anchors = self._anchor_positions(query, text, idx.documents[idx.sentences[s.sid].doc_id].get("language", "fr"))
                s.span = extract_span(text, kind, query, anchors)
                s.score += self.type_adjustment(kind, s.span)
            for s in ranked[SPAN_SEARCH_DEPTH:]:
                s.score += self.type_adjustment(kind, None)
            ranked.sort(key=lambda s: -s.score)
        return ranked

    def _anchor_positions(self, query: Query, sentence: str, language: str) -> list[int]:
        """Where the question's own words match in the sentence (same stem or a translation);
        the conversation's words when the question's own do not match at all."""
        own = self._positions(query, sentence, language, own=True)
        return own or self._positions(query, sentence, language, own=False)

    def _positions(self, query: Query, sentence: str, language: str, *, own: bool) -> list[int]:
        terms, rows = self._anchor_sets(query, own)
        if not terms and not rows:
            return []
        idx = self.retriever.index
        vocab_row = self.retriever.vocab_rows()
        positions = []
        for m in _TOKEN.finditer(sentence):
            word = m.group().lower()
            if vocab_row.get(word, -1) in rows or idx.term_ids.get(textmod.stem(word, language), -1) in terms:
                positions.append(m.start())
        return positions

    def _anchor_sets(self, query: Query, own: bool) -> tuple[frozenset[int], frozenset[int]]:
        """Term ids and vocabulary rows that count as a match of the question's words (once per query)."""
        key = "own" if own else "context"
        cached = query.cache.get(key)
        if cached is None:
            words = [w for w in query.words if (w.weight >= 1.0) == own]
            terms = frozenset(t for w in words for t in w.terms)
            rows: set[int] = set()
            for w in words:
                if w.sims is not None:
                    rows.update(np.flatnonzero(w.sims >= ANCHOR_MIN_SIM).tolist())
            cached = query.cache[key] = (terms, frozenset(rows))
        return cached

    def confidence(self, query: Query, best: ScoredSentence, kind: str | None, mode: str) -> float:
        """How sure the best sentence answers *this* question: its own words only (context carried
        from earlier questions helps find passages, not to vouch for them)."""
        d = best.dense if mode != "lexical" else DENSE_STANDIN
        # A bare follow-up ("Dans quel but ?") has almost no words of its own: judge it with its context.
        own_words = sum(1 for w in query.words if w.weight >= 1.0)
        c = (best.own_coverage if own_words >= 2 else best.coverage) if mode != "dense" else COVER_STANDIN
        return W_DENSE * d + W_COVER * c + self.type_adjustment(kind, best.span) - self.missing_entity_penalty(query)

    def citations(self, scored: list[ScoredSentence], k: int) -> list[Citation]:
        """One citation per passage, numbered in the order of its best sentence, which is the
        highlight (scored sentences are unique, so passages are the only duplicates)."""
        idx = self.retriever.index
        out: list[Citation] = []
        used_chunks: set[int] = set()
        for s in scored:
            if len(out) >= k:
                break
            if s.chunk in used_chunks:
                continue
            used_chunks.add(s.chunk)
            chunk = idx.chunks[s.chunk]
            doc = idx.documents[chunk.doc_id]
            sent = idx.sentences[s.sid]
            out.append(Citation(
                n=len(out) + 1, chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, title=doc["title"], source=doc["source"],
                url=doc.get("url"), published=doc.get("published"), passage=doc["text"][chunk.start : chunk.end],
                start=chunk.start, end=chunk.end, highlights=[[sent.start, sent.end]], score=round(float(s.score), 4),
            ))
        return out

    def answer(self, query: Query, cands: list[Candidate], *, k: int, mode: str, kind: str | None) -> Answer:
        idx = self.retriever.index
        scored = self.score_sentences(query, cands[: max(k * 2, 10)], kind, mode)
        if not scored:
            return Answer(query.text, query.language, False, NOT_FOUND[query.language])
        best = scored[0]
        conf = self.confidence(query, best, kind, mode)
        if conf < self.min_confidence:
            return Answer(query.text, query.language, False, NOT_FOUND[query.language], confidence=conf)

        citations = self.citations(scored, k)
        text = best.span or idx.sentence_text(best.sid)
        return Answer(query.text, query.language, True, text, citations, confidence=conf,
                      span_type=kind if best.span else None)
