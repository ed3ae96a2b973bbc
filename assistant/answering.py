"""From candidate passages to an answer: score every sentence of the best passages, pick the one
that answers, cut a short span when the question asks for a typed thing (a person, an amount, a
count, a date, a place, an organisation), number the citations, or abstain."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import text as textmod
from .retrieval import Candidate, Query, Retriever

NOT_FOUND = {
    "fr": "Je ne trouve pas la réponse à cette question dans mes sources.",
    "en": "I could not find the answer to this question in my sources.",
}

# Question type -> patterns that recognise it at the start (or inside) the question.
_QTYPES: list[tuple[str, re.Pattern]] = [
    ("money", re.compile(r"\b(how much|combien (?:d['’]argent|d['’]euros|de dollars|coûte|vaut|pèse)|quel(?:le)? (?:montant|somme|budget)|what (?:amount|sum|budget)|how big (?:is|was) the (?:budget|fund))", re.I)),
    ("count", re.compile(r"\b(how many|combien|quel nombre|what number)\b", re.I)),
    ("date", re.compile(r"\b(when|quand|what date|which date|what day|which day|what year|which year|quelle date|quel jour|quelle année|en quelle année|à quelle date|dates?\b.*\?)", re.I)),
    ("place", re.compile(r"(\bwhere\b|(?:^|\s)où\b|\bwhich (?:city|place|venue|building|country)\b|\bquel(?:le)? (?:ville|lieu|endroit|bâtiment|pays)\b|\bdans quel(?:le)? (?:ville|lieu|pays)\b)", re.I)),
    ("org", re.compile(r"\b(which (?:company|firm|startup|start-up|organisation|organization|group)|what (?:company|firm|startup|organisation|organization)|quel(?:le)? (?:entreprise|société|start-?up|organisation|groupe|firme))\b", re.I)),
    ("person", re.compile(r"(\bwho\b|\bwhom\b|\bwhose\b|^\s*(?:et\s+)?qui\b|\b(?:par|de|à|avec) qui\b|\bquel(?:le)? (?:personnalité|dirigeant|responsable|patron|ministre|président|chercheur|personne)\b|\bwhich (?:person|leader|official|minister|executive|boss|researcher)\b|\bqui est\b|\bqui sont\b|\bqui\s+(?:va|vont|sera|seront|dirige|représente|co-?préside|préside|a|ont)\b)", re.I)),
]

SPAN_PATTERNS = {
    "money": textmod.MONEY_SPAN,
    "count": textmod.COUNT_SPAN,
    "date": textmod.DATE_SPAN,
    "place": textmod.PLACE_SPAN,
    "person": textmod.NAME_SPAN,
    "org": textmod.NAME_SPAN,
}

# Weights of the sentence score (calibrated on eval/dev.jsonl, see README "Calibration").
W_DENSE, W_COVER, W_TYPE, W_CHUNK = 1.0, 0.55, 0.12, 0.15


def question_type(question: str) -> str | None:
    for name, rx in _QTYPES:
        if rx.search(question):
            return name
    return None


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


def _question_forms(query: Query) -> set[str]:
    forms = set()
    for w in query.words:
        if w.weight >= 1.0:
            forms.add(textmod.fold(w.word))
            forms.update(textmod.fold(p) for p in w.word.split("-"))
    return forms


def _clean_span(span: str, kind: str, question_forms: set[str]) -> str | None:
    span = span.strip(" ,;:.«»\"'’")
    if kind == "place":
        span = re.sub(r"^(?:à|au|aux|en|dans|sur|in|at)\s+", "", span, flags=re.I)
    if kind in ("person", "org"):
        toks = span.split()
        # Drop leading tokens the question already names ("Mistral AI Arthur Mensch" for a
        # question about Mistral -> "Arthur Mensch"), and short acronyms glued to them.
        while toks and (textmod.fold(toks[0]) in question_forms):
            toks.pop(0)
            while toks and len(toks) > 1 and toks[0].isupper() and len(toks[0]) <= 3:
                toks.pop(0)
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
            distance = min((abs(a - p) for p in anchor_positions), default=0)
            found.append((distance, a, span))
    if not found:
        return None
    return min(found)[2]


class Answerer:
    def __init__(self, retriever: Retriever, min_confidence: float):
        self.retriever = retriever
        self.min_confidence = min_confidence

    def _coverage(self, query: Query, sentence_terms: frozenset[int]) -> float:
        total = got = 0.0
        for w in query.words:
            imp = w.importance * w.weight
            total += imp
            best = max((s for t, s in w.terms.items() if t in sentence_terms), default=0.0)
            got += imp * best
        return got / total if total else 0.0

    def score_sentences(self, query: Query, cands: list[Candidate], kind: str | None, mode: str) -> list[ScoredSentence]:
        idx = self.retriever.index
        out: list[ScoredSentence] = []
        seen: set[int] = set()
        max_rrf = max((c.rrf for c in cands), default=1.0) or 1.0
        for cand in cands:
            chunk = idx.chunks[cand.chunk]
            for sid in chunk.sentence_ids:
                dense = float(self.retriever.sentence_vector(sid) @ query.vector)
                terms = self.retriever.sentence_terms(sid)
                coverage = self._coverage(query, terms)
                text = idx.sentence_text(sid)
                anchors = self._anchor_positions(query, text, idx.documents[idx.sentences[sid].doc_id].get("language", "fr"))
                span = extract_span(text, kind, query, anchors)
                d = dense if mode != "lexical" else 0.0
                cov = coverage if mode != "dense" else 0.0
                score = W_DENSE * d + W_COVER * cov + (W_TYPE if span else 0.0) + W_CHUNK * cand.rrf / max_rrf
                if mode == "lexical":
                    score += W_DENSE * 0.25  # keep the scale comparable for abstention
                if sid in seen:
                    # The same sentence in an overlapping chunk: keep the better chunk only.
                    prev = next(s for s in out if s.sid == sid)
                    if score > prev.score:
                        prev.score, prev.chunk = score, cand.chunk
                    continue
                seen.add(sid)
                out.append(ScoredSentence(sid, cand.chunk, score, dense, coverage, span))
        out.sort(key=lambda s: -s.score)
        return out

    def _anchor_positions(self, query: Query, sentence: str, language: str) -> list[int]:
        ids = self.retriever.index.term_ids
        wanted = {t for w in query.words if w.weight >= 1.0 for t in w.terms}
        positions = []
        for m in re.finditer(r"[\w’'-]+", sentence):
            tid = ids.get(textmod.stem(m.group().lower(), language))
            if tid is not None and tid in wanted:
                positions.append(m.start())
        return positions

    def confidence(self, best: ScoredSentence) -> float:
        return W_DENSE * best.dense + W_COVER * best.coverage

    def answer(self, query: Query, cands: list[Candidate], *, k: int, mode: str, kind: str | None) -> Answer:
        idx = self.retriever.index
        scored = self.score_sentences(query, cands[: max(k * 2, 10)], kind, mode)
        if not scored:
            return Answer(query.text, query.language, False, NOT_FOUND[query.language])
        best = scored[0]
        conf = self.confidence(best) if mode == "hybrid" else best.score
        if conf < self.min_confidence:
            return Answer(query.text, query.language, False, NOT_FOUND[query.language], confidence=conf)

        # One citation per chunk, in order of its best sentence; highlights = that sentence.
        citations: list[Citation] = []
        used_chunks: set[int] = set()
        used_sentences: set[int] = set()
        for s in scored:
            if len(citations) >= k:
                break
            if s.chunk in used_chunks or s.sid in used_sentences:
                continue
            used_chunks.add(s.chunk)
            used_sentences.add(s.sid)
            chunk = idx.chunks[s.chunk]
            doc = idx.documents[chunk.doc_id]
            sent = idx.sentences[s.sid]
            citations.append(
                Citation(
                    n=len(citations) + 1,
                    chunk_id=chunk.chunk_id,
                    doc_id=chunk.doc_id,
                    title=doc["title"],
                    source=doc["source"],
                    url=doc.get("url"),
                    published=doc.get("published"),
                    passage=doc["text"][chunk.start : chunk.end],
                    start=chunk.start,
                    end=chunk.end,
                    highlights=[[sent.start, sent.end]],
                    score=round(float(s.score), 4),
                )
            )
        text = best.span or idx.sentence_text(best.sid)
        return Answer(query.text, query.language, True, text, citations, confidence=conf,
                      span_type=kind if best.span else None)
