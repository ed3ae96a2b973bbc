"""Typed answer spans, the fourth stage: the short thing in a sentence that answers.

``candidates(sentence, entities)`` lists every span of every type in a sentence: amounts,
counts, dates, durations, percentages (patterns of how numbers and dates are written, in French
and English), and names (the build-time entities of annotate.py, plus runs of capitalised words
they missed), typed person / org / place / misc. ``choose`` then picks the candidate of the asked
type that is bound to the question: nearest to where the question's words matched in the
sentence, in the same clause, not a thing the question already names, and with coordinated
candidates joined ("les États-Unis et le Royaume-Uni", "les 10 et 11 février").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import text as textmod

_NUM = r"\d{1,3}(?:[\s\u00a0\u202f.,]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_NUMWORD_FR = r"(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|vingt|trente|quarante|cinquante|soixante|cent|cents|mille)"
_NUMWORD_EN = r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|twenty|thirty|forty|fifty|sixty|hundred|a hundred|a thousand|thousand|a dozen|dozens)"
_APPROX_FR = r"(?<!\w)(?:une\s+)?(?:dizaine|douzaine|quinzaine|vingtaine|trentaine|quarantaine|cinquantaine|soixantaine|centaine|millier|milliers|centaines|dizaines)"
# A quantity starts a word: not the "7" of "G7", the "200" of "H200" or the "cent" of "décent".
_QTY = rf"(?<!\w)(?:{_NUM}|{_NUMWORD_FR}(?:[\s-]{_NUMWORD_FR})*|{_NUMWORD_EN}(?:[\s-]{_NUMWORD_EN})*)"
_RANGE = rf"{_QTY}(?:\s?(?:à|-|–|to|and|et|ou|or)\s?{_QTY})?"
_SCALE = r"(?:milliards?|millions?|mille|billions?|trillions?|thousand|hundred|bn|mds?|md|m|k)"
_CURRENCY = r"(?:euros?|dollars?|€|\$|£|livres?(?:\s+sterling)?|pounds?|yuans?|dirhams?|roupies?|rupees?|francs?)"
_APPROX = r"(?:(?:près de|environ|plus de|moins de|quelque|au moins|jusqu['’]à|about|around|nearly|almost|more than|over|less than|at least|up to|some)\s)?"

MONEY = re.compile(
    rf"{_APPROX}(?:[€$£]\s?{_RANGE}(?:\s?{_SCALE}\b)?"
    rf"|{_RANGE}\s?(?:{_SCALE}\b\s?)?(?:(?:de|d['’])\s?)?{_CURRENCY}(?!\w)"
    rf"|{_RANGE}\s?{_SCALE}\b(?=\s+(?:de|d['’])\s?(?:{_CURRENCY})))",
    re.I,
)
PERCENT = re.compile(rf"{_APPROX}{_RANGE}\s?(?:%|pour\s?cent|percent|per cent)", re.I)
_MONTHS = (
    r"(?:janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|"
    r"décembre|decembre|january|february|march|april|may|june|july|august|september|october|"
    r"november|december|janv\.|févr\.|sept\.|oct\.|nov\.|déc\.|jan\.|feb\.|aug\.|dec\.)"
)
_DAY = r"\d{1,2}(?:er|st|nd|rd|th)?"
_DAYS = rf"{_DAY}(?:\s?(?:-|–|et|au|à|and|to|,)\s?{_DAY})*"
_WEEKDAY = r"(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
DATE = re.compile(
    rf"(?:(?:du|les|le|from|on|between|entre le|entre les|since|depuis le|depuis|d[eè]s le|until|jusqu['’]au)\s)?(?:{_WEEKDAY}\s)?"
    rf"(?:{_DAYS}\s{_MONTHS}(?:\s(?:au|to|-|–)\s{_DAY}\s{_MONTHS})?|{_MONTHS}\s{_DAYS}(?!\d))(?:,?\s\d{{4}})?"
    rf"|(?:(?:en|in|depuis|since|d[eè]s|début|fin|mi-|early|late|mid-)\s?)?{_MONTHS}(?:\s(?:prochain|dernier|\d{{4}}))?(?=[\s,.;:)]|$)"
    rf"|(?:(?:avant|après|d['’]ici|jusqu['’]à|before|after|by|until)\s)?(?:au|à|en|in|the|at|this|last|next|ce|cet|l['’])\s?(?:printemps|été|automne|hiver|spring|summer|autumn|fall|winter)(?:\s(?:de\s|d['’]|of\s)?(?:l['’]année\s)?(?:19|20)\d{{2}}|\s(?:prochain|dernier))?"
    rf"|(?:(?:en|in|d['’]ici|by|depuis|since|avant|before|après|after|à partir de|from)\s)?(?:19|20)\d{{2}}(?:\s?(?:-|–|à|to|et|and)\s?(?:19|20)?\d{{2,4}})?",
    re.I,
)
TIME_UNIT = r"(?:secondes?|minutes?|heures?|jours?|journées?|semaines?|mois|ans|années?|seconds?|hours?|days?|weeks?|months?|years?|decades?|décennies?)"
DURATION = re.compile(
    rf"(?:(?:pendant|durant|sur|en|for|over|within|during)\s)?{_APPROX}(?:{_RANGE}|quelques|plusieurs|a few|several)\s(?:[a-zéèê-]+\s)?{TIME_UNIT}\b"
    rf"|(?:une|a|an|one)\s(?:{TIME_UNIT}|semaine|week|journée|day)\b",
    re.I,
)
COUNT = re.compile(
    rf"{_APPROX}(?:{_RANGE}|{_APPROX_FR})(?:\s{_SCALE}\b)?\s(?:(?:de|d['’])\s?)?(?:[A-Za-zÀ-ÿ'’-]+)(?:\s(?:(?:de|d['’]|des|of)\s?)?[A-Za-zÀ-ÿ'’-]+)?",
    re.I,
)
# The quantity a count starts with: its approximation, number (or number word) and scale.
_COUNT_HEAD = re.compile(rf"{_APPROX}(?:{_RANGE}|{_APPROX_FR})(?!\w)(?:\s{_SCALE}\b)?", re.I)
_UPPER = r"[A-ZÀ-ÖØ-Þ]"
_NAME_TOKEN = rf"(?:{_UPPER}\.(?:-?{_UPPER}\.)*|{_UPPER}[\w’'\-]*[\w]|{_UPPER}|\d+[A-Za-z]\w*)"
_NAME_GLUE = r"(?:\s(?:(?:de|du|des|von|van|der|den|da|di|le|la|of|the|y|bin|ben|al|el)\s)+)"
NAME = re.compile(rf"{_NAME_TOKEN}(?:(?:\s|{_NAME_GLUE}|\s?-\s?){_NAME_TOKEN})*")
_CLAUSE_BREAK = re.compile(r"[;:,()«»\"“”–—]|\s(?:mais|but|tandis que|alors que|whereas|while|et|and|ou|or|qui|who|which|dont)\s", re.I)
_COORD = re.compile(r"^\s*(?:,|et|and|ou|or|ainsi que|as well as|&)\s*(?:l['’]|la\s|le\s|les\s|the\s)?$", re.I)

_HAS_NUMBER = re.compile(rf"\d|\b(?:{_NUMWORD_FR}|{_NUMWORD_EN}|quelques|plusieurs|few|several|une?|a|an|one|dizaine|douzaine|quinzaine|vingtaine|trentaine|quarantaine|cinquantaine|soixantaine|centaine|millier)s?\b", re.I)
_HAS_MONTH = re.compile(rf"{_MONTHS}|\b(?:printemps|été|automne|hiver|spring|summer|autumn|fall|winter)\b", re.I)

_GLUE = frozenset({"de", "des", "du", "of"})
# Determiners that stand between a number and the noun it counts (a closed class of the grammar)
_PRE_NOUN = frozenset({"such", "other", "more", "further", "additional", "autres", "supplémentaires"})
SURE_DISTANCE = 40  # characters from a matched question word
COUNTED_ELSEWHERE = 30  # a count holding a question word, when the counted one is elsewhere
HEAD_ELSEWHERE = 40  # a name near other question words, when the sentence has the asked role's words
NUMERIC_TYPES = ("money", "count", "date", "duration", "percent")
# Which candidate types answer which asked type, and how well (a person asked: a person is
# best, an organisation or a country can be the actor).
COMPATIBLE: dict[str, dict[str, float]] = {
    "person": {"person": 1.0, "misc": 0.6, "org": 0.4, "place": 0.2},
    "org": {"org": 1.0, "misc": 0.7, "person": 0.2, "place": 0.2},
    "place": {"place": 1.0, "org": 0.3, "misc": 0.2},
    "date": {"date": 1.0},
    "duration": {"duration": 1.0, "date": 0.2},
    "money": {"money": 1.0, "count": 0.3, "percent": 0.3},
    "count": {"count": 1.0, "money": 0.2, "percent": 0.4},
}


@dataclass(frozen=True)
class Span:
    start: int  # offsets in the sentence
    end: int
    text: str
    kind: str  # money, count, date, duration, percent, person, org, place, misc


def _ner_kind(label: str) -> str | None:
    return {"PER": "person", "ORG": "org", "LOC": "place", "MISC": "misc", "DATE": "date", "MONEY": "money",
            "CARDINAL": "count", "PERCENT": "percent"}.get(label)


def _strip(sentence: str, a: int, b: int) -> tuple[int, int]:
    while a < b and sentence[a] in " ,;:.«»\"'’()":
        a += 1
    while b > a and sentence[b - 1] in " ,;:.«»\"'’()":
        b -= 1
    return a, b


_ELIDED_END = re.compile(r"(?:^|[\s(])(?:[ldLD]|qu|Qu)['’]$")


def _join_elided(sentence: str, entities) -> list[tuple[int, int, str]]:
    """An entity cut after an elided article ("Foire pour l’essor de l’" + "Industrie
    Lainière", as a tagger splits at the apostrophe) runs on through the name after it; the
    entities that name covered are dropped."""
    out: list[tuple[int, int, str]] = []
    skip_until = -1
    for a, b, label in sorted(entities):
        if a < skip_until:
            continue
        if _ELIDED_END.search(sentence[a:b]):
            m = NAME.match(sentence, b)
            if m:
                b = skip_until = m.end()
        out.append((a, b, label))
    return out


def candidates(sentence: str, entities: list[tuple[int, int, str]] = ()) -> list[Span]:
    """Every typed span of a sentence. ``entities`` are (start, end, label) in sentence offsets."""
    out: list[Span] = []
    taken: list[tuple[int, int]] = []

    def add(a: int, b: int, kind: str) -> None:
        a, b = _strip(sentence, a, b)
        if b > a:
            out.append(Span(a, b, sentence[a:b], kind))

    def overlaps(a: int, b: int) -> bool:
        return any(a < y and x < b for x, y in taken)

    has_digit = _HAS_NUMBER.search(sentence) is not None
    has_date = has_digit or _HAS_MONTH.search(sentence) is not None
    for kind, rx in (("money", MONEY), ("percent", PERCENT), ("date", DATE), ("duration", DURATION)):
        if not (has_date if kind == "date" else has_digit):
            continue
        for m in rx.finditer(sentence):
            if not overlaps(*m.span()):
                add(*m.span(), kind)
                taken.append(m.span())
    for m in COUNT.finditer(sentence) if has_digit else ():
        a, b = m.span()
        if overlaps(a, b):
            continue
        if re.fullmatch(r"(?:19|20)\d{2}", m.group().split()[0]):
            continue
        # the counted thing ends at the first grammar word ("12 guildes ont signé" -> "12 guildes"),
        # or at a name after it ("1,200 looms Varga builds" -> "1,200 looms"), counted from after
        # the quantity and its approximation ("more than 4,000", "une vingtaine")
        head = _COUNT_HEAD.match(sentence, a)
        q_end = head.end() if head and head.end() <= b else a
        toks = list(re.finditer(r"\S+", sentence[q_end:b]))
        keep = 0
        while keep < len(toks):
            word = toks[keep].group()
            tok = word.lower().strip(",.;:")
            if tok in _GLUE and keep + 1 < len(toks) and toks[keep + 1].group().lower().strip(",.;:") not in textmod.STOPWORDS:
                keep += 2  # "une centaine de tisserands", "dozens of weavers"
                continue
            if not keep and tok in _PRE_NOUN and keep + 1 < len(toks):
                keep += 1  # "four such plants", "trois autres sites": the noun comes next
                continue
            if tok in textmod.STOPWORDS or re.match(r"(?:d|l)['’]$", tok):
                break
            if keep and word[:1].isupper() and toks[keep - 1].group()[:1].islower():
                break  # a name after a common noun begins another phrase
            keep += 1
        if not keep and not re.search(r"\d", sentence[a:q_end]):
            continue  # a number word with nothing counted after it
        b = q_end + toks[keep - 1].end() if keep else q_end
        add(a, b, "count")
        taken.append((a, b))
    # Names: build-time entities first, then capitalised runs they missed.
    names: list[tuple[int, int, str]] = []
    for a, b, label in _join_elided(sentence, entities):
        kind = _ner_kind(label)
        if kind in ("person", "org", "place", "misc") and not overlaps(a, b):
            names.append((a, b, kind))
    for m in NAME.finditer(sentence):
        a, b = m.span()
        if a == 0:
            # a capitalised first word is usually just the start of the sentence, and a grammar
            # word there starts no name ("Depuis le G7 de Bruges" -> "G7 de Bruges")
            first = re.match(r"[\w’'\-.]+", m.group())
            if first and first.group().lower() in textmod.STOPWORDS:
                rest = re.match(rf"[\w’'\-.]+(?:{_NAME_GLUE}|\s)", m.group())
                if not rest:
                    continue
                a = rest.end()
            elif " " not in m.group():
                continue
            if a >= b or not re.match(_UPPER, sentence[a]):
                continue
        if overlaps(a, b):
            continue
        inside = [n for n in names if n[0] < b and a < n[1]]
        if not inside:
            names.append((a, b, "misc"))
        else:
            # pieces of the run that no entity covers ("Robotix SA Kenji Morohashi": ORG + a PER-less rest)
            cursor = a
            for x, y, _ in sorted(inside):
                if x - cursor > 2 and re.search(_UPPER, sentence[cursor:x]):
                    names.append((cursor, x, "misc"))
                cursor = max(cursor, y)
            if b - cursor > 2 and re.search(_UPPER, sentence[cursor:b]):
                names.append((cursor, b, "misc"))
    for a, b, kind in names:
        add(a, b, kind)
    return out


def _anchor_distance(span: Span, anchors: list[int], sentence: str, counted: frozenset[int] = frozenset(),
                     head: frozenset[int] = frozenset()) -> float:
    """How far a candidate is from the question's matched words, in characters, with every clause
    boundary in between counting as far, and a candidate right after a matched word (news style
    names the role, then the person: "le fondateur de Robotix SA Kenji Morohashi") preferred.
    ``counted``: where the words of what a count question counts matched; when the sentence has
    them, a number holding another question word ("900 marins" for "combien de ports")
    is near, not bound. ``head``: where the words of a which-question's head phrase matched (the
    role asked for: "which Flemish mayor"); when the sentence has them, a name near only other
    question words is farther ("le maire flamand Jan Peeters, reçu par Ana Ruiz, de Bruges")."""
    if not anchors:
        return 200.0
    head = head & frozenset(anchors)
    best = 1e9
    numeric = span.kind in NUMERIC_TYPES
    for p in anchors:
        if span.start <= p < span.end:
            if numeric:
                if not counted or p in counted:
                    return 0.0  # "combien de terrains" and "quatre terrains": the counted thing is asked
                best = min(best, COUNTED_ELSEWHERE)
            continue  # the anchor is inside a name: the question names it
        if p < span.start:
            between = sentence[p : span.start]
            d = span.start - p
        else:
            between = sentence[span.end : p]
            d = 1.5 * (p - span.end) + 10
        d += 60 * len(_CLAUSE_BREAK.findall(between))
        if head and p not in head:
            d += HEAD_ELSEWHERE
        best = min(best, d)
    return best if best < 1e9 else 200.0


def join_coordinated(spans: list[Span], sentence: str) -> list[Span]:
    """Adjacent candidates of one kind joined by "et / and / ," become one span."""
    spans = sorted(spans, key=lambda s: s.start)
    out: list[Span] = []
    for s in spans:
        if out and out[-1].kind == s.kind and _COORD.match(sentence[out[-1].end : s.start]):
            prev = out.pop()
            s = Span(prev.start, s.end, sentence[prev.start : s.end], s.kind)
        out.append(s)
    return out


def mentioned(span_text: str, forms: set[str]) -> bool:
    """True when every content word of the span is already in the question or conversation."""
    words = [textmod.fold(w) for w in textmod.words(span_text) if w.lower() not in textmod.STOPWORDS]
    return bool(words) and all(w in forms or any(p in forms for p in w.split("-")) for w in words)


def _trim_mentioned(span: Span, forms: set[str], sentence: str) -> Span | None:
    """Drop leading/trailing words the question already names ("Robotix SA Kenji Morohashi" when
    asking what Kenji Morohashi founded -> "Robotix SA")."""
    toks = [(m.start() + span.start, m.end() + span.start, m.group()) for m in re.finditer(r"\S+", span.text)]
    known = [textmod.fold(t.strip(",.;:«»\"'’()")) in forms for _, _, t in toks]
    if not any(known) or all(known):
        return None if all(known) else span
    # longest run of words the question does not name
    best, run = (0, 0), None
    for i, k in enumerate(known + [True]):
        if not k and run is None:
            run = i
        elif k and run is not None:
            if i - run > best[1] - best[0]:
                best = (run, i)
            run = None
    if best[1] == best[0]:
        return None
    a, b = toks[best[0]][0], toks[best[1] - 1][1]
    a, b = _strip(sentence, a, b)
    return Span(a, b, sentence[a:b], span.kind) if b > a else None


@dataclass(frozen=True)
class Choice:
    span: Span
    fit: float  # type compatibility (0-1)
    distance: float
    score: float
    referent: bool = False  # taken from the sentence before, which this one refers back to


def choose(sentence: str, spans: list[Span], asked: str | None, anchors: list[int], forms: set[str],
           *, plural: bool = False, counted: frozenset[int] = frozenset(),
           head: frozenset[int] = frozenset()) -> Choice | None:
    """The candidate of the asked type bound to the question, or None. ``counted``: the anchors
    of what a count question counts; ``head``: those of a which-question's head phrase
    (_anchor_distance)."""
    if asked is None or asked == "yesno":
        return None
    compat = COMPATIBLE.get(asked, {})
    pool = [s for s in spans if compat.get(s.kind, 0) > 0]
    if asked in ("person", "org", "place"):
        trimmed = []
        for s in pool:
            t = _trim_mentioned(s, forms, sentence)
            if t is None or len(t.text) < 2 or (t.kind == "person" and len(t.text.split()) < 2 and "." not in t.text and asked == "person"
                                                and s.kind != "person"):
                continue
            if re.fullmatch(r"(?=.*\.)(?:[A-ZÀ-Þ]\.?-?)+", t.text) or (len(t.text) <= 2 and t.text.isupper()):
                continue  # a lone initial or a two-letter acronym is not an answer
            trimmed.append(t)
        pool = join_coordinated(trimmed, sentence) if plural else trimmed
    else:
        pool = [s for s in pool if not mentioned(s.text, forms)]
        pool = join_coordinated(pool, sentence)
    if not pool:
        return None
    scored = []
    for s in pool:
        fit = compat.get(s.kind, 0.0)
        dist = _anchor_distance(s, anchors, sentence, counted, head)
        scored.append(Choice(s, fit, dist, fit - dist / 150.0))
    scored.sort(key=lambda c: -c.score)
    return scored[0]


def confident(choice: Choice | None, sentence: str, spans_: list[Span], asked: str | None) -> bool:
    """Whether a chosen span is sure enough to stand as the short answer (else the sentence
    answers): of exactly the asked kind, and either the only one in the sentence or clearly the
    nearest to the question's words."""
    if choice is None:
        return False
    if choice.referent:
        return choice.fit >= 0.6
    if choice.fit < 1.0:
        return False
    rivals = [s for s in spans_ if s.kind == choice.span.kind and not (s.start < choice.span.end and choice.span.start < s.end)]
    if not rivals:
        return True
    return choice.distance <= SURE_DISTANCE
