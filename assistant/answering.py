"""From retrieval results to an answer: sentence scoring (scoring.py), typed spans (spans.py),
sources that disagree, abstention (abstention.py), numbered citations.

The answerer takes what retrieval found (``retrieval.Retrieved``) and reads the store for
sentence records; it never searches itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import abstention, spans
from . import questions as qmod
from . import text as textmod
from .retrieval import Retrieved, Retriever
from .scoring import SENTENCE_FEATURES, Weights, coverage, load_weights, min_key_match, sigmoid, unmatched_share

NOT_FOUND = {
    "fr": "Je ne trouve pas la réponse à cette question dans mes sources.",
    "en": "I could not find the answer to this question in my sources.",
}
YES_NO = {"fr": ("Oui", "Non"), "en": ("Yes", "No")}
# Connectives of cause and purpose (grammar words of both languages): a why-question's answer
# usually holds one.
_CAUSAL = re.compile(r"\b(?:car|parce qu|parce que|puisque|afin d|afin que|pour que|pour\s+\w+er\b|en raison d|à cause d|grâce à|faute d|"
                     r"because|since|so that|in order to|due to|owing to|as a result|to\s+\w+)\b", re.I)
# What a single-signal mode does not compute (see Answerer._neutral).
_DENSE_FEATURES = frozenset({"cos0", "cos1", "cos0_rel", "cos1_rel", "ctx0", "ctx1", "prev_cos0", "prev_cos1", "doc_cos1", "sent_rank",
                             "domain0", "domain1", "latent", "latent_rel"})
_LATENT_FEATURES = frozenset({"latent", "latent_rel"})
_LEXICAL_FEATURES = frozenset({"cov", "cov_rel", "cov_ctx", "cov_all", "min_key", "prev_cov", "next_cov", "doc_cov", "ent",
                               "ent_doc", "ent_min", "key_min", "unmatched"})
_MODE_MISSING = {"lexical": _DENSE_FEATURES, "dense": _LEXICAL_FEATURES}
_YEAR = re.compile(r"(?<![\d,.])(1[89]\d\d|20\d\d)(?![\d,.]\d)")
AGREEMENT_WEIGHT = 0.0  # default (off); `summit fit` tunes it on the dev split (weights.json settings)
CONFLICT_MARGIN = 1.0  # default; `summit fit` tunes it on the dev split (weights.json settings)
NEAR_CHARS = 150  # about one sentence: prev_near halves one sentence away from the previous answer
LOCAL_WINDOW = 60  # characters around an answer span where the question's words should be
CANDIDATE_CHUNKS = 12  # passages whose sentences are scored
ENTITY_MATCH = 0.5  # a question name counts as found at this match strength
ANCHOR_MIN_STRENGTH = 0.35  # a sentence word is where a question word matched at this strength
# Negation is grammar: French "ne ... pas/plus/jamais/aucun", English "not/never/no", and verbs
# whose meaning is a refusal.
_NEGATION = re.compile(
    r"\b(?:ne|n['’])\s*\w+(?:\s+\w+)?\s+(?:pas|plus|jamais|aucun\w*|guère|point|nullement|rien|personne)\b|\bn['’]\w+\s+(?:pas|plus|jamais|rien)\b"
    r"|\baucune?s?\b|\bnulle part\b"
    r"|\b(?:not|never|no longer|n['’]t|none|nothing|nobody|no one|neither|nor)\b|\bno\s+(?=[a-z])|\w+n['’]t\b|\bsans\b|\bwithout\b|\bni\b"
    r"|\b(?:refus\w*|declin\w*|reject\w*|rejet\w*|renonc\w*|absent\w*)\b",
    re.I,
)


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
    # Not part of the public object: what follow-ups and evaluation look at.
    confidence: float = 0.0
    span_type: str | None = None
    sentence: str | None = None
    asked_type: str | None = None
    sid: int | None = None  # the answering sentence (for the next question of a conversation)
    doc_id: str | None = None
    # the typed span chosen in the answering sentence, even when not sure enough to stand as the
    # short answer: what a follow-up's "she" or "it" most likely refers to
    focus: str | None = None

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
    doc_id: str
    features: dict
    x: np.ndarray
    choice: spans.Choice | None = None
    p: float = 0.0
    logit: float = 0.0
    support: float = 0.0  # other articles' confidence in the same answer (Answerer.corroborate)
    own_logit: float = 0.0  # the sentence's own score, before corroboration (what abstention weighs)

    @property
    def span(self) -> str | None:
        return self.choice.span.text if self.choice else None


# A number as written, thousands groups and decimals included: "1 500", "2,5", "10.000".
_NUMBER = re.compile(r"\d+(?:[ \u00a0\u202f.,]\d{3})*(?:[.,]\d+)?")


def _value_words(span: str) -> frozenset[str]:
    """What an answer span names, to compare it with another: its numbers whole ("1 500" is not
    "500") and its content words, folded."""
    numbers = {re.sub(r"[\s\u00a0\u202f]", "", n) for n in _NUMBER.findall(span)}
    words = {textmod.fold(w) for w in textmod.content_words(_NUMBER.sub(" ", span)) if not w.isdigit()}
    return frozenset(numbers | words)


def _published(doc: dict | None) -> str:
    return str((doc or {}).get("published") or "")


class Answerer:
    def __init__(self, retriever: Retriever, weights: Weights | None = None, min_confidence: float | None = None):
        self.retriever = retriever
        self.store = retriever.store
        self.weights = weights or load_weights()
        # A setting overrides the fitted threshold (SUMMIT_MIN_CONFIDENCE); None keeps it.
        self.threshold = self.weights.abstain.threshold if min_confidence is None else min_confidence
        self._candidates: dict[int, list[spans.Span]] = {}
        self._names: dict[int, list] = {}
        self._earlier: dict[int, bool] = {}
        self._doc_terms: dict[str, frozenset[str]] = {}

    # ---- per-sentence tables ----------------------------------------------------------------
    def warm_up(self, max_sentences: int = 100_000) -> None:
        """Find every sentence's typed spans now for a small corpus (about 1 ms a sentence), so a
        first question does not pay for them; a large corpus fills the table on demand."""
        n = self.store.counts()["sentences"]
        if n <= max_sentences:
            for sid in self.store.ids("sentence"):
                self.sentence_spans(sid)
                self._sentence_names(sid)

    def sentence_spans(self, sid: int) -> list[spans.Span]:
        got = self._candidates.get(sid)
        if got is None:
            s = self.store.sentence(sid)
            ents = [(a - s.start, b - s.start, label) for a, b, label in s.entities]
            got = self._candidates[sid] = spans.candidates(self.store.sentence_text(sid), ents)
        return got

    def doc_terms(self, doc_id: str) -> frozenset[str]:
        got = self._doc_terms.get(doc_id)
        if got is None:
            doc = self.store.document(doc_id) or {}
            got = self._doc_terms[doc_id] = frozenset(textmod.terms(doc.get("text", "") + " " + doc.get("title", ""), doc.get("language", "fr")))
        return got

    def anchors(self, query, sid: int) -> list[int]:
        """Where the question's own words match in the sentence (same stem or a translation);
        the conversation's words when the question's own do not match at all."""
        own = sorted({p for ps in self.word_positions(query, sid).values() for p in ps})
        if own:
            return own
        text = self.store.sentence_text(sid)
        s = self.store.sentence(sid)
        lang = (self.store.document(s.doc_id) or {}).get("language", "fr")
        vocab_row = self.retriever.vocab_rows()
        sets = query.cache.get("anchor_context")
        if sets is None:
            ws = [w for w in query.words if not w.own]
            terms = frozenset(t for w in ws for t in w.terms)
            rows: set[int] = set()
            for w in ws:
                if w.sims is not None:
                    rows.update(np.flatnonzero(w.sims >= 0.45 + 0.45 * ANCHOR_MIN_STRENGTH).tolist())
            sets = query.cache["anchor_context"] = (terms, frozenset(rows))
        terms, rows = sets
        if not terms and not rows:
            return []
        return [m.start() for m in re.finditer(r"[\w’'-]+", text)
                if vocab_row.get(m.group().lower(), -1) in rows or textmod.stem(m.group().lower(), lang) in terms]

    def counted_anchors(self, query, sid: int) -> frozenset[int]:
        """Where the words of what a count question counts match in the sentence."""
        counted = query.qtype.counted
        if not counted:
            return frozenset()
        return self._positions_of(query, sid, {textmod.fold(w) for w in counted})

    def head_anchors(self, query, sid: int) -> frozenset[int]:
        """Where a which-question's head phrase matches in the sentence: its modifiers when they
        do ("which Flemish mayor": flemish; the noun says the kind, the modifier which one),
        else the head noun."""
        groups = query.cache.get("head_words")
        if groups is None:
            phrase = [textmod.fold(w) for w in qmod.head_phrase(query.text, query.language)] if query.qtype.head else []
            noun = textmod.fold(query.qtype.head or "")
            groups = query.cache["head_words"] = (frozenset(w for w in phrase if w != noun), frozenset([noun] if phrase else []))
        for wanted in groups:
            found = self._positions_of(query, sid, wanted)
            if found:
                return found
        return frozenset()

    def _positions_of(self, query, sid: int, wanted: set[str] | frozenset[str]) -> frozenset[int]:
        """Where the question words among ``wanted`` (folded, elision dropped) match in the sentence."""
        positions = self.word_positions(query, sid)
        return frozenset(p for i, ps in positions.items()
                         if textmod.fold(re.sub(r"^\w['’]", "", query.words[i].word.lower())) in wanted for p in ps)

    def word_positions(self, query, sid: int) -> dict[int, list[int]]:
        """Where each of the question's own words matches in the sentence: word index -> offsets."""
        memo = query.cache.setdefault("word_positions", {})
        if sid in memo:
            return memo[sid]
        sets = query.cache.get("word_sets")
        if sets is None:
            sets = []
            for i, w in enumerate(query.words):
                if not w.own:
                    continue
                rows = frozenset(np.flatnonzero(w.sims >= 0.45 + 0.45 * ANCHOR_MIN_STRENGTH).tolist()) if w.sims is not None else frozenset()
                sets.append((i, frozenset(w.terms), rows))
            query.cache["word_sets"] = sets
        text = self.store.sentence_text(sid)
        lang = (self.store.document(self.store.sentence(sid).doc_id) or {}).get("language", "fr")
        vocab_row = self.retriever.vocab_rows()
        out: dict[int, list[int]] = {}
        for m in re.finditer(r"[\w’'-]+", text):
            tok = m.group().lower()
            row, st = vocab_row.get(tok, -1), textmod.stem(tok, lang)
            for i, terms, rows in sets:
                if st in terms or row in rows:
                    out.setdefault(i, []).append(m.start())
        memo[sid] = out
        return out

    def local_coverage(self, query, sid: int, span: spans.Span) -> float:
        """Share of the question's own meaning matched close to the answer span, in its clause: an
        answer is bound to what was asked ("12 guildes ont signé" for how many guilds signed) and
        a near-miss is not ("how many coastal guilds": "côtière" is elsewhere)."""
        text = self.store.sentence_text(sid)
        pos = self.word_positions(query, sid)
        total = got = 0.0
        for i, w in enumerate(query.words):
            if not w.own:
                continue
            total += w.importance
            for p in pos.get(i, ()):
                if span.start - LOCAL_WINDOW <= p <= span.end + LOCAL_WINDOW:
                    a, b = sorted((p, span.start if p < span.start else span.end))
                    if not spans._CLAUSE_BREAK.search(text[a:b]) or span.start <= p < span.end:
                        got += w.importance
                        break
        return got / total if total else 0.0

    # ---- scoring ----------------------------------------------------------------------------
    def score(self, retrieved: Retrieved) -> list[ScoredSentence]:
        query, mode = retrieved.query, retrieved.mode
        store = self.store
        cands = retrieved.candidates[:CANDIDATE_CHUNKS]
        if not cands:
            return []
        sid_chunks: dict[int, list[int]] = {}
        for c in cands:
            for sid in store.chunk(c.chunk).sentence_ids:
                sid_chunks.setdefault(sid, []).append(c.chunk)
        sids = list(sid_chunks)
        prev_of = {sid: store.previous_sentence(sid) for sid in sids}
        next_of = {sid: self._next_sentence(sid) for sid in sids}
        extended = list(dict.fromkeys(sids + [x for x in list(prev_of.values()) + list(next_of.values()) if x is not None]))
        pos = {sid: i for i, sid in enumerate(extended)}
        chunk_ids = [c.chunk for c in cands]
        n_enc = store.n_encoders
        cos = np.zeros((2, len(extended)))
        ctx = np.zeros((2, len(sids)))
        for e in range(min(n_enc, 2)):
            cos[e] = self.retriever.cosines(query, e, "sentence", extended)
            ccos = dict(zip(chunk_ids, self.retriever.cosines(query, e, "chunk", chunk_ids)))
            ctx[e] = [max(ccos[c] for c in sid_chunks[s]) for s in sids]
        if n_enc == 1:
            cos[1], ctx[1] = cos[0], ctx[0]
        if mode == "lexical":  # single-signal modes: no cosines
            cos[:] = 0.0
            ctx[:] = 0.0
        by_chunk = {c.chunk: c for c in cands}
        max_rrf = max(c.rrf for c in cands) or 1.0
        own_entities = [i for i, w in enumerate(query.words) if w.own and w.entity]
        asked = query.qtype.answer_type
        typed = asked not in (None, "yesno")
        why = query.qtype.wh == "why"
        question_years = bool(_YEAR.search(query.text))
        known = set(query.forms) | query.answered  # what no answer span may be made of only
        # Latent terms (e5's sparse head): None when the index or the question has none; the
        # features then take the value the model was fitted around (they count for nothing).
        latent_of = getattr(store, "latent_scores", None)
        latent = latent_of(sids, query.latent) if (latent_of is not None and mode != "lexical") else None
        doc_best = {}
        for sid in sids:
            d = store.sentence(sid).doc_id
            doc_best[d] = max(doc_best.get(d, -1.0), cos[1, pos[sid]])
        rows = []
        for j, sid in enumerate(sids):
            rec = store.sentence(sid)
            m_own = self.retriever.word_matches(query, sid)
            m = m_own
            prev, nxt = prev_of[sid], next_of[sid]
            m_prev = self.retriever.word_matches(query, prev) if prev is not None else None
            m_next = self.retriever.word_matches(query, nxt) if nxt is not None else None
            if rec.anaphor and m_prev is not None:
                m = np.maximum(m_own, m_prev)
            window = [m] + [x for x in (m_prev, m_next) if x is not None]
            m_ctx = np.max(np.stack(window), axis=0)
            if mode == "dense":
                m = m_ctx = np.zeros_like(m)
                m_prev = m_next = None
            ent = (sum(1 for i in own_entities if m_ctx[i] >= ENTITY_MATCH) / len(own_entities)) if own_entities else 1.0
            dterms = self.doc_terms(rec.doc_id)
            if own_entities:
                ent_doc = sum(1 for i in own_entities if any(t in dterms for t in query.words[i].terms)) / len(own_entities)
            else:
                ent_doc = 1.0
            doc_m = np.array([max((v for t, v in w.terms.items() if t in dterms), default=0.0) for w in query.words], dtype=np.float32)
            text = store.sentence_text(sid)
            choice = None
            if typed:
                choice = spans.choose(text, self.sentence_spans(sid), asked, self.anchors(query, sid),
                                      known, plural=query.qtype.plural, counted=self.counted_anchors(query, sid),
                                      head=self.head_anchors(query, sid))
                if choice is None and rec.anaphor and prev is not None and asked in ("person", "org", "place"):
                    choice = self._referent(prev, asked, known)
            best_chunk = max(sid_chunks[sid], key=lambda c: by_chunk[c].rrf)
            cand = by_chunk[best_chunk]
            i = pos[sid]
            f = {
                "cos0": cos[0, i], "cos1": cos[1, i], "ctx0": ctx[0, j], "ctx1": ctx[1, j],
                "prev_cos0": cos[0, pos[prev]] if prev is not None else 0.0,
                "prev_cos1": cos[1, pos[prev]] if prev is not None else 0.0,
                "cov": coverage(query.words, m), "cov_ctx": coverage(query.words, m_ctx),
                "prev_cov": coverage(query.words, m_prev) if m_prev is not None else 0.0,
                "next_cov": coverage(query.words, m_next) if m_next is not None else 0.0,
                "doc_cov": coverage(query.words, doc_m), "doc_cos1": doc_best[rec.doc_id],
                "cov_all": coverage(query.words, m, own_only=False), "min_key": min_key_match(query.words, m),
                "ent": ent, "ent_doc": ent_doc,
                "type_fit": (choice.fit * math.exp(-choice.distance / 120.0)) if choice else 0.0,
                "type_missing": 1.0 if typed and choice is None else 0.0,
                "why_marker": 1.0 if why and _CAUSAL.search(text) else 0.0,
                "rrf": cand.rrf / max_rrf, "chunk_rank": 1.0 / (1 + cand.rank),
                "sent_rank": 1.0 / (1 + retrieved.sentence_ranks[sid]) if sid in retrieved.sentence_ranks else 0.0,
                "anaphor": 1.0 if rec.anaphor else 0.0,
                "source": 1.0 if rec.doc_id in query.sources else 0.0,
                "latent": float(latent[j]) if latent is not None else 0.0,
            }
            same_doc = query.previous_doc is not None and rec.doc_id == query.previous_doc
            f["prev_doc"] = 1.0 if same_doc else 0.0
            f["prev_near"] = (1.0 / (1.0 + abs(rec.start - self.store.sentence(query.previous_sid).start) / NEAR_CHARS)
                              if same_doc and query.previous_sid is not None else 0.0)
            # the sentence that answered the question before: a follow-up asks for something new
            f["prev_same"] = 1.0 if (query.previous_sid is not None and sid == query.previous_sid) else 0.0
            f["earlier"] = 1.0 if (not question_years and self.earlier_years(sid)) else 0.0
            f["foreign"] = self.foreign_entities(query, sid, asked)
            f["prev_foreign"] = self.foreign_entities(query, prev, asked) if prev is not None else 0.0
            # key terms, for abstention: how the question's own words fare in this sentence and
            # the one before (a near-miss has the names but not the attribute asked about)
            m_key = np.maximum(m, m_prev) if m_prev is not None else m
            f["key_min"] = min_key_match(query.words, m_key)
            f["unmatched"] = unmatched_share(query.words, m_key)
            f["ent_min"] = min((float(m_key[i]) for i in own_entities), default=1.0)
            f["type_bound"] = 1.0 if (choice is not None and choice.fit >= 1.0 and choice.distance <= spans.SURE_DISTANCE) else 0.0
            f["_matches"] = m_key
            f["local_cov"] = self.local_coverage(query, sid, choice.span) if (choice is not None and not choice.referent) else 0.0
            rows.append((sid, best_chunk, rec.doc_id, f, choice))
        top_cos = [max(r[3]["cos0"] for r in rows), max(r[3]["cos1"] for r in rows)]
        top_cov = max(r[3]["cov"] for r in rows)
        top_latent = max(r[3]["latent"] for r in rows)
        # features a single-signal mode, or an index without latent terms, does not compute
        missing = (_MODE_MISSING.get(mode, frozenset())) | (_LATENT_FEATURES if latent is None else frozenset())
        out = []
        for sid, chunk, doc_id, f, choice in rows:
            f["cos0_rel"] = f["cos0"] - top_cos[0]
            f["cos1_rel"] = f["cos1"] - top_cos[1]
            f["cov_rel"] = f["cov"] - top_cov
            f["latent_rel"] = f["latent"] - top_latent
            x = np.array([f[k] for k in SENTENCE_FEATURES], dtype=float)
            if missing:
                x = self._neutral_features(x, missing, self.weights.sentence)
            out.append(ScoredSentence(sid, chunk, doc_id, f, x, choice))
        X = np.stack([s.x for s in out])
        logits = self.weights.sentence.logit(X)
        for s, z in zip(out, logits):
            s.logit = s.own_logit = float(z)
            s.p = sigmoid(s.logit)
        self.corroborate(out, asked)
        out.sort(key=lambda s: -s.logit)
        return out

    def corroborate(self, scored: list[ScoredSentence], asked: str | None) -> None:
        """Answers that other articles give too: a candidate's logit gains ``agreement_weight``
        times its support, the chance that some other article confirms it: 1 - prod(1 - p) over
        the best sentence of each other article whose answer span names the same thing (the words
        of one span hold the other's: "Varga" and "Ilse Varga"). Facts that a growing corpus
        reports again and again outweigh a sentence that fits the question as well but stands
        alone; the support is bounded by 1, so a name many articles mention gains no more than
        one sure confirmation. It orders the candidates only: abstention weighs the best one's own
        score (``own_logit``), or a corpus whose facts are each told once (one article, or a
        new topic) would be refused more often than one that repeats itself. In place."""
        weight = float(self.weights.settings.get("agreement_weight", AGREEMENT_WEIGHT))
        if weight <= 0.0 or asked in (None, "yesno"):
            return
        values = [_value_words(s.span) if s.span else frozenset() for s in scored]
        for s, own in zip(scored, values):
            if not own:
                continue
            best: dict[str, float] = {}
            for o, other in zip(scored, values):
                if o.doc_id != s.doc_id and other and (own <= other or other <= own):
                    best[o.doc_id] = max(best.get(o.doc_id, 0.0), o.p)
            s.support = 1.0 - math.prod(1.0 - p for p in best.values())
        for s in scored:
            if s.support:
                s.logit += weight * s.support
                s.p = sigmoid(s.logit)

    def foreign_entities(self, query, sid: int, asked: str | None) -> float:
        """How strongly a sentence is about specific things the question never mentions: names
        (other than the kind asked for) absent from the question, weighted by their rarity in the
        corpus. "Seoul's summit was co-chaired by ..." is about Seoul; a question about "the
        summit" is not."""
        key = ("foreign", sid, asked)
        got = query.cache.get(key)
        if got is not None:
            return got
        answer_kinds = {k for k, v in spans.COMPATIBLE.get(asked or "", {}).items() if v >= 0.5}
        total = 0.0
        for kind, folded, rarity in self._sentence_names(sid):
            if kind in answer_kinds or any(w in query.forms for w in folded):
                continue
            total += rarity
        got = query.cache[key] = min(total, 3.0)
        return got

    def earlier_years(self, sid: int) -> bool:
        """Whether a sentence is set in the past of its own article: it, or the sentence before
        it, names a year before the year the article was published, and no later one ("Six mois
        plus tard, en mai 2029, ..." in an article of 2031). A question that names no year is
        most often about what its articles report as current (query-independent, kept)."""
        got = self._earlier.get(sid)
        if got is None:
            rec = self.store.sentence(sid)
            published = _published(self.store.document(rec.doc_id))[:4]
            got = False
            if published.isdigit():
                own = [int(y) for y in _YEAR.findall(self.store.sentence_text(sid))]
                prev = self.store.previous_sentence(sid)
                years = own + ([int(y) for y in _YEAR.findall(self.store.sentence_text(prev))] if prev is not None else [])
                got = any(y < int(published) for y in years) and not any(y >= int(published) for y in own)
            self._earlier[sid] = got
        return got

    def _sentence_names(self, sid: int) -> list[tuple[str, tuple[str, ...], float]]:
        """The names of a sentence (query-independent, kept): kind, folded words, rarity (mean
        idf of their terms over the highest idf)."""
        got = self._names.get(sid)
        if got is None:
            rec = self.store.sentence(sid)
            doc = self.store.document(rec.doc_id) or {}
            text, lang = doc.get("text", ""), doc.get("language", "fr")
            max_idf = self.store.max_idf or 1.0
            got = []
            for a, b, label in rec.entities:
                kind = spans._ner_kind(label)
                if kind not in ("person", "org", "place", "misc"):
                    continue
                words = textmod.content_words(text[a:b])
                if not words:
                    continue
                idfs = [self.store.term_idf(textmod.stem(w, lang)) or max_idf for w in words]
                got.append((kind, tuple(textmod.fold(w) for w in words), sum(idfs) / len(idfs) / max_idf))
            self._names[sid] = got
        return got

    def domain(self, query) -> tuple[float, float]:
        """The question's own cosine with the corpus centroid, per encoder (the second repeats the
        first when there is one encoder)."""
        vals = [float(query.own_vectors[e] @ self.retriever.centroid(e)) for e in range(min(2, self.store.n_encoders))]
        return (vals[0], vals[-1])

    @staticmethod
    def _neutral_features(x: np.ndarray, names, model) -> np.ndarray:
        """These features are missing: they take the value the model was fitted around."""
        x = x.copy()
        for i, name in enumerate(model.features):
            if name in names:
                x[i] = model.mean[i]
        return x

    @staticmethod
    def _neutral(x: np.ndarray, mode: str, model) -> np.ndarray:
        """A single-signal mode (dense or lexical) lacks some features: they take the value the
        model was fitted around (its mean), so they count for nothing either way."""
        return Answerer._neutral_features(x, _MODE_MISSING.get(mode, frozenset()), model)

    def _next_sentence(self, sid: int) -> int | None:
        return self.store.next_sentence(sid)

    def _referent(self, prev: int, asked: str, forms: set[str]) -> spans.Choice | None:
        """What a sentence that refers back ("Ce dernier ...") is about: the last thing of the
        asked kind named in the sentence before."""
        text = self.store.sentence_text(prev)
        pool = [s for s in self.sentence_spans(prev) if spans.COMPATIBLE.get(asked, {}).get(s.kind, 0) > 0]
        pool = [s for s in pool if not spans.mentioned(s.text, forms) and len(s.text) > 2]
        if not pool:
            return None
        last = max(pool, key=lambda s: (spans.COMPATIBLE[asked][s.kind] >= 1.0, s.end))
        fit = spans.COMPATIBLE[asked][last.kind] * 0.8
        return spans.Choice(last, fit, 40.0, fit, referent=True)

    # ---- the answer -------------------------------------------------------------------------
    def citations(self, scored: list[ScoredSentence], k: int) -> list[Citation]:
        """One citation per passage, numbered in the order of its best sentence, which is the highlight."""
        store = self.store
        out: list[Citation] = []
        used: set[int] = set()
        for s in scored:
            if len(out) >= k:
                break
            if s.chunk in used:
                continue
            used.add(s.chunk)
            chunk = store.chunk(s.chunk)
            doc = store.document(chunk.doc_id) or {}
            sent = store.sentence(s.sid)
            out.append(Citation(
                n=len(out) + 1, chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, title=doc.get("title", ""), source=doc.get("source", ""),
                url=doc.get("url"), published=doc.get("published"), passage=doc.get("text", "")[chunk.start : chunk.end],
                start=chunk.start, end=chunk.end, highlights=[[sent.start, sent.end]], score=round(float(s.p), 4),
            ))
        return out

    def resolve_conflict(self, scored: list[ScoredSentence], asked: str | None) -> list[ScoredSentence]:
        """Sources that disagree: when another document's sentence, nearly as likely to answer,
        gives a different value of the asked type (or, for a yes/no question, the opposite
        polarity), answer from the newest document (by ``published``) and cite both, newest
        first. How close "nearly" is (a logit margin) is fitted on the dev split."""
        if not scored:
            return scored
        best = scored[0]
        margin = float(self.weights.settings.get("conflict_margin", CONFLICT_MARGIN))
        if asked == "yesno":
            polarity = lambda s: bool(_NEGATION.search(self.store.sentence_text(s.sid)))  # noqa: E731
            rivals = [s for s in scored[1:6] if s.doc_id != best.doc_id and best.logit - s.logit <= margin
                      and polarity(s) != polarity(best)]
        elif asked in spans.NUMERIC_TYPES + ("place",) and best.choice is not None:
            value = textmod.fold(best.span or "")
            rivals = [s for s in scored[1:6] if s.choice is not None and s.doc_id != best.doc_id and best.logit - s.logit <= margin
                      and textmod.fold(s.span or "") != value and s.choice.fit >= 1.0]
        else:
            return scored
        if not rivals:
            return scored
        docs = {s.doc_id: _published(self.store.document(s.doc_id)) for s in [best, *rivals]}
        dated = [s for s in rivals if docs[s.doc_id] and docs[best.doc_id] and docs[s.doc_id] != docs[best.doc_id]]
        if not dated:
            return scored
        newest = max([best, *dated], key=lambda s: docs[s.doc_id])
        older = best if newest is not best else max(dated, key=lambda s: s.logit)
        rest = [s for s in scored if s is not newest and s is not older]
        return [newest, older, *rest]

    def answer(self, retrieved: Retrieved, *, k: int) -> Answer:
        query = retrieved.query
        lang = query.language
        scored = self.score(retrieved)
        if not scored:
            return Answer(query.text, lang, False, NOT_FOUND[lang])
        asked = query.qtype.answer_type
        scored = self.resolve_conflict(scored, asked)
        best = scored[0]
        second = scored[1] if len(scored) > 1 else None
        x = abstention.features(query, best, second, asked not in (None, "yesno"), self.domain(query))
        if retrieved.mode != "hybrid":
            x = self._neutral(x, retrieved.mode, self.weights.abstain)
        confidence = float(self.weights.abstain.proba(x[None, :])[0])
        if abstention.refuses_outright(x, self.weights.settings):
            confidence = 0.0
        if confidence < self.threshold:
            return Answer(query.text, lang, False, NOT_FOUND[lang], confidence=confidence, asked_type=asked)
        sentence = self.store.sentence_text(best.sid)
        if asked == "yesno":
            yes, no = YES_NO[lang]
            text = f"{no if _NEGATION.search(sentence) else yes}. {sentence}"
        else:
            sure = spans.confident(best.choice, sentence, self.sentence_spans(best.sid), asked)
            text = best.span if sure else sentence
        return Answer(query.text, lang, True, text, self.citations(scored, k), confidence=confidence,
                      span_type=asked if text != sentence else None, sentence=sentence, asked_type=asked,
                      sid=best.sid, doc_id=best.doc_id, focus=best.span)
