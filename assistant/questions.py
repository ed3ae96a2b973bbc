"""Question analysis, the first stage: what kind of answer a question asks for.

Pure functions of the question text. The cues are the interrogative words of French and English
(a closed class of the grammar, not vocabulary of any article): "who/qui", "when/quand", "how
much/combien", an inverted or auxiliary-first question for yes/no, and the noun after
"which/what/quel" ("which company"), typed by its similarity to a few category words.

The asked type is one of:

=========  ===========================================================
person     who / qui
org        which company / quelle entreprise
place      where / où, which country / city / venue
date       when / quand, which day / year
duration   how long / combien de temps, pendant combien de ...
money      how much (money) / combien (d'euros), what amount
count      how many / combien de + noun, what number
yesno      an auxiliary-first question ("Did ...", "Est-ce que ...", "A-t-il ...")
None       what / why / how: the answer is the sentence
=========  ===========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import spans
from . import text as textmod

# Category words: the noun after which/what/quel is one of these, or introduces names of one kind
# in the corpus, or is close to one of these (word vectors); else no type (the sentence answers).
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "person": ("person", "personne", "people", "personnalité", "individual", "individu"),
    "org": ("company", "entreprise", "organisation", "organization", "société", "firme"),
    "place": ("place", "lieu", "city", "ville", "country", "pays", "location", "endroit"),
    "date": ("date", "day", "jour", "year", "année", "month", "mois"),
    "money": ("amount", "montant", "sum", "somme", "money", "argent"),
    "count": ("number", "nombre", "quantity", "quantité"),
}
CATEGORY_MIN_SIM = 0.72

_W = r"[\w'’-]+"
_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("duration", re.compile(r"\b(how long|for how long|combien de temps|pendant combien|durant combien|sur combien de temps|quelle dur[ée]e|what duration)\b", re.I)),
    ("money", re.compile(r"\b(how much|combien (?:d['’]argent|d['’]euros|de dollars|co[uû]te|vaut|p[eè]se|investi\w*|mis\w*|apport\w*|donn\w*|promis\w*|engag\w*)|how (?:big|large) (?:is|was|will be) the (?:budget|fund|investment|amount))\b", re.I)),
    ("count", re.compile(r"\b(how many|combien(?:\s+de|\s+d['’])|combien)\b", re.I)),
    ("date", re.compile(r"\b(when|quand|à quelle date|a quelle date|en quelle année|de quand|depuis quand|jusqu['’]à quand|what date|which date|what day|which day|what year|which year|quel jour|quelle date|quelle année|quel mois)\b", re.I)),
    ("place", re.compile(r"(\bwhere\b|(?:^|[\s,])o[uù]\b|\bd['’]o[uù]\b)", re.I)),
    ("person", re.compile(r"(\bwho\b|\bwhom\b|\bwhose\b|(?:^|[\s,])qui\b(?!\s+(?:est-ce que|est-ce qu)))", re.I)),
    ("why", re.compile(r"\b(why|pourquoi|for what reason|pour quelle raison|dans quel but|to what end|what for)\b", re.I)),
]
_WHICH = re.compile(
    rf"\b(?:which|what|quel|quelle|quels|quelles|lequel|laquelle|lesquels|lesquelles)\s+(?:(?:kind|type|sort)\s+of\s+)?({_W})(?:\s+({_W}))?",
    re.I,
)
# An auxiliary or verb first, or French "est-ce que" / subject-verb inversion: a yes/no question.
_YESNO_EN = re.compile(r"^\s*(?:and\s+|so\s+|but\s+)?(?:is|are|was|were|do|does|did|will|would|can|could|has|have|had|should|shall|may|might|must)\b", re.I)
_YESNO_FR = re.compile(r"^\s*(?:et\s+|mais\s+|alors\s+)?(?:est-ce que|est-ce qu['’])|\b\w+-(?:t-)?(?:il|elle|ils|elles|on)\b", re.I)
_OPEN_FR = re.compile(r"\b(qui|que|quoi|quel\w*|qu['’]|o[uù]|quand|comment|combien|pourquoi|lequel|laquelle|lesquel\w*)\b", re.I)
_PLURAL_HEAD = re.compile(r"\b(?:which|what|quels|quelles|lesquels|lesquelles)\b", re.I)


@dataclass(frozen=True)
class QuestionType:
    wh: str  # who, what, when, where, how_much, how_many, how_long, which, yesno, why, how, other
    answer_type: str | None  # see the module docstring
    head: str | None = None  # the noun after which/what/quel
    plural: bool = False  # "which countries", "quels pays": a list may answer
    counted: tuple[str, ...] = ()  # the words of what a count question counts ("how many wooden barges")


# Verbs that can follow an interrogative word directly ("which is", "how many did").
_AUXILIARIES = ("is", "are", "was", "were", "est", "sont", "did", "does", "do", "will")
_COUNTED = re.compile(r"\b(?:how many|combien\s+(?:de|d['’]))\s*(.*)", re.I)


_TIME_UNIT = re.compile(rf"{spans.TIME_UNIT}$", re.I)  # the units a duration span is written in


def counted_words(question: str) -> tuple[str, ...]:
    """What a count question counts: the words after "how many" / "combien de" up to the first
    grammar word ("how many wooden river barges does ..." -> wooden, river, barges;
    "combien de tisserands flamands ont ..." -> tisserands, flamands)."""
    m = _COUNTED.search(question)
    if not m:
        return ()
    out = []
    for w in re.findall(r"[\w’'-]+", m.group(1)):
        low = w.lower()
        elided = re.match(r"(\w+)['’](\w.*)", low)
        if elided:
            if elided.group(1) != "d" or not out:
                break  # "l'électricien": an article begins another phrase
            low = elided.group(2)  # "chefs d'État": the complement belongs to the noun
        if low in textmod.STOPWORDS or low in _AUXILIARIES or low in ("of", "have", "has"):
            if out:
                break
            continue  # "how many of the ...": grammar before the noun
        out.append(low)
        if len(out) == 3:
            break
    return tuple(out)


def _first_match(question: str) -> tuple[str, int] | None:
    best = None
    for name, rx in _PATTERNS:
        m = rx.search(question)
        if m and (best is None or m.start() < best[1]):
            best = (name, m.start())
    return best


def is_yes_no(question: str) -> bool:
    """An auxiliary first ("Did ...", "Have they said how much ..."), "Est-ce que ...", or a
    French subject-verb inversion with no interrogative word before it ("La Chine a-t-elle
    signé ?"): a yes/no question, whatever interrogative words come later in it."""
    q = question.strip()
    if _YESNO_EN.search(q):
        return True
    m = _YESNO_FR.search(q)
    if m and not _OPEN_FR.search(q[: m.start()]):
        return True
    return False


_HEAD_PHRASE = re.compile(
    r"\b(?:which|what|quel|quelle|quels|quelles|lequel|laquelle|lesquels|lesquelles)\s+(?:(?:kind|type|sort)\s+of\s+)?([^?.,;:!()«»\"]*)",
    re.I,
)
# "What is the amount ...", "Quel est le montant ...": the noun after the copula and its article
_COPULAR_HEAD = re.compile(
    r"\b(?:what|quel|quelle|quels|quelles)\s+(?:is|was|are|were|will\s+be|est|était|sont|étaient|sera|seront)\s+"
    r"(?:the\s+|le\s+|la\s+|les\s+|l['’])([^?.,;:!()«»\"]*)",
    re.I,
)
HEAD_PHRASE_WORDS = 4
# English prepositions a stopword list may lack: a noun phrase ends before them (a closed class)
_PREPOSITIONS_EN = frozenset({"behind", "beyond", "across", "along", "among", "amongst", "around", "toward", "towards",
                              "upon", "within", "without", "despite", "near", "inside", "outside", "beside", "via"})


# a French verb with its subject pronoun after it: "doit-elle", "a-t-il", "vont-ils"
_INVERTED = re.compile(r"\w-(?:t-)?(?:il|elle|ils|elles|on|je|tu|nous|vous)$")


def head_phrase(question: str, language: str | None = None, keep_case: bool = False) -> list[str]:
    """The words after which/what/quel up to the first grammar word or punctuation, at most four:
    the noun phrase asked about with its modifiers ("which young Flemish river port" -> young,
    flemish, river, port; "quel maître de forges" -> maître: "de" is a grammar word)."""
    m = _COPULAR_HEAD.search(question) or _HEAD_PHRASE.search(question)
    if not m:
        return []
    stop = {"en": textmod.STOPWORDS_EN, "fr": textmod.STOPWORDS_FR}.get(language or "", textmod.STOPWORDS)
    out = []
    for w in re.findall(r"[\w’'-]+", m.group(1)):
        low = w.lower()
        if low in stop or low in _AUXILIARIES or low in _PREPOSITIONS_EN or re.match(r"\w['’]", low) or _INVERTED.search(low):
            break  # an inverted verb ("quel projet doit-elle ...") ends the phrase too
        out.append(w)
        if len(out) == HEAD_PHRASE_WORDS:
            break
    return out if keep_case else [w.lower() for w in out]


def looks_plural(noun: str, interrogative: str) -> bool:
    """A noun in -s or -x after a plural-capable interrogative ("which ports", "quels pays"). The
    English endings -ss, -us and -is are singular ("which boss", "what campus", "what basis"):
    French marks the number on "quels" / "quelles" itself."""
    low = noun.lower()
    if len(low) <= 3 or not low.endswith(("s", "x")):
        return False
    english = re.match(r"\s*(?:which|what)\b", interrogative, re.I) is not None
    return not (english and low.endswith(("ss", "us", "is")))


def head_noun(question: str) -> tuple[str | None, bool]:
    """The noun after which/what/quel, and whether it is plural (the first word of the phrase, or
    the second after a name-like adjective; ``analyse`` weighs the whole phrase)."""
    m = _WHICH.search(question)
    if not m:
        return None, False
    word = m.group(1)
    if word.lower() in textmod.STOPWORDS or word.lower() in _AUXILIARIES:
        copular = _COPULAR_HEAD.search(question)
        phrase = head_phrase(question) if copular else []
        if phrase:  # "quel est le montant ...": montant; "quels sont les pays ...": plural
            copula = question[copular.start() : copular.start(1)]  # "quels sont les ", not the rest
            return phrase[0], bool(re.search(r"\b(?:are|were|sont|étaient|seront|les)\s", copula, re.I))
        return None, False
    # "what French company" / "quelle jeune pousse": an adjective first, the noun after it
    if m.group(2) and m.group(2).lower() not in textmod.STOPWORDS and (word[0].isupper() or word.lower().endswith(("ian", "ais", "aise", "ean", "ese", "ish"))):
        word = m.group(2)
    plural = bool(_PLURAL_HEAD.search(m.group(0))) and looks_plural(word, m.group(0))
    return word.lower(), plural


def head_order(question: str, language: str | None) -> list[str]:
    """The words of the head phrase, the likeliest head noun first. English puts the noun last
    ("which young river port": port), French first ("quel port fluvial": port), after a
    name-like adjective at most (head_noun)."""
    phrase = head_phrase(question, language, keep_case=True)
    first, _ = head_noun(question)
    if language == "en":
        # a capitalised word is a name or a name-like adjective ("South American"), not the head
        # and an -ly word modifies the noun ("the monthly fee": fee, not a date)
        order = [w.lower() for w in reversed(phrase) if not w[:1].isupper() and not (w.lower().endswith("ly") and len(phrase) > 1)]
    else:
        order = ([first] if first else []) + [w.lower() for w in phrase if w.lower() != first]
    return order


def classify_head(head: str | None, similarity, corpus_type=None) -> str | None:
    """The category of a head noun: a category word itself; else the closest category word when
    close enough (``similarity`` maps (word, words) to the best cosine of word vectors); else what
    the noun introduces in the corpus (``corpus_type``: "la commissaire Ilona Vesterberg" makes
    "commissaire" a person word). None when nothing says: the sentence then answers."""
    if not head:
        return None
    for cat, words in CATEGORY_WORDS.items():
        if head in words:
            return cat
    # a close category word is direct evidence; what the noun introduces in the corpus comes next
    best, best_sim = None, 0.0
    for cat, words in CATEGORY_WORDS.items():
        s = similarity(head, list(words))
        if s > best_sim:
            best, best_sim = cat, s
    if best_sim >= CATEGORY_MIN_SIM:
        return best
    return corpus_type(head) if corpus_type is not None else None


def analyse(question: str, similarity=None, corpus_type=None, language: str | None = None) -> QuestionType:
    """The asked type of ``question``. ``similarity`` (word, words) -> cosine and ``corpus_type``
    (word -> type or None) type the head noun of which/what questions (classify_head): the
    phrase's words in head_order, the first that has a category ("which two ports dominate":
    ports, though the phrase ends on a verb). ``language``: the question's."""
    q = question.strip()
    first = _first_match(q)
    head, plural = head_noun(q)
    which_pos = _WHICH.search(q).start() if head else None
    if is_yes_no(q):
        return QuestionType("yesno", "yesno")
    if head is not None and (first is None or which_pos <= first[1]):
        cat = None
        if similarity is not None:
            order = head_order(q, language) or [head]
            for word in order:
                cat = classify_head(word, similarity, corpus_type)
                if cat:
                    head = word
                    break
            else:
                head = order[0]
            plural = plural or (bool(_PLURAL_HEAD.search(q)) and looks_plural(head, _WHICH.search(q).group(0)))
        return QuestionType("which" if cat else "what", cat, head, plural)
    if first is None:
        return QuestionType("what" if re.search(r"\b(what|que|quoi|qu['’]est-ce)\b", q, re.I) else "how" if re.search(r"\b(how|comment)\b", q, re.I) else "other", None)
    name = first[0]
    wh = {"duration": "how_long", "money": "how_much", "count": "how_many", "date": "when", "place": "where",
          "person": "who", "why": "why"}[name]
    if name == "why":
        return QuestionType("why", None)
    if name == "person" and re.search(r"\b(?i:who|qui)\s+(?i:is|are|was|were|est|sont|était|c['’]est)\s+(?:[A-ZÀ-Þ][\w.'’-]*\s*){1,4}\??\s*$", q):
        return QuestionType("who", None)  # "Who is Kenji Morohashi?" asks for a description
    if name == "count" and re.search(r"\bcombien\b", q, re.I) and not re.search(r"\bcombien\s+(?:de|d['’])", q, re.I):
        # bare "combien" ("Combien a-t-il investi ?"): money when about paying, else a count
        return QuestionType("how_much", "money")
    counted = counted_words(q) if name == "count" else ()
    if counted and _TIME_UNIT.match(counted[0]):
        return QuestionType("how_long", "duration")  # "for how many years", "combien de jours"
    return QuestionType(wh, name, counted=counted)
