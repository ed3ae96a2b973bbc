"""Small, dependency-light text helpers shared by indexing, retrieval and answering:
normalisation, tokenisation, stop words, stemming, language detection and span patterns."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

import snowballstemmer

APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})

STOPWORDS_FR = frozenset(
    """a à au aux avec ce ces cet cette ceci cela ça dans de des du elle elles en et eux il ils je la le
    les leur leurs lui ma mais me même mes moi mon ne nos notre nous on ou où par pas pour qu que qui
    sa se ses son sur ta te tes toi ton tu un une vos votre vous c d j l m n s t y été être avoir a ai
    as avons avez ont est sont suis es sommes êtes était étaient sera seront serait fait faire
    quel quelle quels quelles quoi comment combien quand pourquoi lequel laquelle lesquels
    dont si plus moins très aussi ainsi alors donc car ni or tout tous toute toutes autre autres
    entre vers chez sans sous après avant depuis pendant selon lors contre cet celui celle ceux
    celles est-ce qu'est-ce va vont doit doivent peut peuvent ont-ils a-t-il y-a-t-il""".split()
)
STOPWORDS_EN = frozenset(
    """a an the and or but if of at by for with about against between into through during before
    after above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own same so
    than too very s t can will just don should now is are was were be been being have has had having
    do does did doing i me my we our you your he him his she her it its they them their what which
    who whom whose this that these those am would could shall may might must also get gets got
    going go goes one ones much many""".split()
)
# Words that frame a question rather than carry its content ("What is X supposed to ...").
QUESTION_FRAME = frozenset(
    """supposed expected say says said according mentioned mention article text talk talks kind type
    thing things name named called happen happens exactly actually really new tell know report
    reported reports
    censé censée censés prévu prévue dit dite selon article texte nom appelle appelé appelée chose
    choses exactement vraiment nouveau nouvelle nouveaux sait savoir""".split()
)
STOPWORDS_QUESTION = QUESTION_FRAME
STOPWORDS = STOPWORDS_FR | STOPWORDS_EN

_FR_MARKERS = frozenset(
    "le la les des du un une et est qui que quoi quel quelle quels quelles où quand comment combien "
    "pourquoi au aux sur pour dans avec sera qu' il elle ce cette ces".split()
)
_EN_MARKERS = frozenset(
    "the a an of is are was were who what which where when how why does do did will would to in on "
    "with for and he she it this that these".split()
)
_WORD = re.compile(r"[0-9A-Za-zÀ-ÖØ-öø-ÿŒœ]+(?:[-'][0-9A-Za-zÀ-ÖØ-öø-ÿŒœ]+)*")
_INVERSION = re.compile(r"(?:-t)?-(?:il|elle|ils|elles|on|je|tu|nous|vous|ce)$", re.I)
_ELISION = re.compile(r"^(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu)'", re.I)

_STEMMERS = {"fr": snowballstemmer.stemmer("french"), "en": snowballstemmer.stemmer("english")}
_STEM_LOCK = threading.Lock()


def normalize(text: str) -> str:
    """NFKC, typographic apostrophes to ASCII, collapsed white space."""
    text = unicodedata.normalize("NFKC", text).translate(APOSTROPHES)
    return re.sub(r"\s+", " ", text).strip()


def fold(text: str) -> str:
    """Lower case without accents: 'Élysée' -> 'elysee'."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("œ", "oe")


def words(text: str) -> list[str]:
    """Surface words with elisions removed ("l'IA" -> "IA"), hyphenated words kept whole."""
    out = []
    for m in _WORD.finditer(text.translate(APOSTROPHES)):
        w = _ELISION.sub("", m.group())
        if w.endswith("'s") or w.endswith("'S"):
            w = w[:-2]
        w = _INVERSION.sub("", w)  # "investit-elle" -> "investit", "vient-il" -> "vient"
        if "-" in w and any(ch.isdigit() for ch in w):
            out += [p for p in w.split("-") if p]  # "500-billion-dollar" -> 500, billion, dollar
        elif w:
            out.append(w)
    return out


def content_words(text: str, *, question: bool = False, keep_case: bool = False) -> list[str]:
    """Lower-case words that carry meaning: no stop words, no one-letter tokens (and, for a
    question, none of the words that only frame it). ``keep_case``: as written, so that names
    can still be told apart."""
    out = []
    for w in words(text):
        lw = w.lower()
        if len(lw) > 1 and lw not in STOPWORDS and fold(lw) not in STOPWORDS:
            if question and lw in QUESTION_FRAME:
                continue
            out.append(w if keep_case else lw)
    return out


@lru_cache(maxsize=200_000)
def stem(word: str, language: str = "fr") -> str:
    """Accent-folded Snowball stem of a lower-case word; hyphenated parts are stemmed separately."""
    # Snowball stemmers keep state between calls: one at a time (the cache makes this rare).
    with _STEM_LOCK:
        stemmer = _STEMMERS.get(language, _STEMMERS["fr"])
        parts = [stemmer.stemWord(p) for p in word.lower().split("-") if p]
    return fold("".join(parts))


def terms(text: str, language: str = "fr") -> list[str]:
    """Index terms of a text: stems of its content words."""
    return [stem(w, language) for w in content_words(text)]


def proper_names(text: str) -> set[str]:
    """Lower-case words written as proper names: capitalised, not the first word of the text
    unless it is no common question word, not a short acronym (AI, IA, UE)."""
    out = set()
    for i, w in enumerate(words(text)):
        if not w[:1].isupper() or w.lower() in STOPWORDS:
            continue
        if w.isupper() and len(w) <= 3:
            continue
        if i == 0 and w.lower() in QUESTION_FRAME:
            continue
        if "-" in w and any(p[:1].islower() for p in w.split("-") if p):
            continue  # a compound with a common word ("Emirati-funded") is not a name
        out.add(w.lower())
    return out


def detect_language(text: str) -> str:
    """'fr' or 'en', from function words and French accents; ties go to French."""
    toks = [w.lower() for w in re.findall(r"[A-Za-zÀ-ÿ']+", text.translate(APOSTROPHES))]
    fr = sum(t in _FR_MARKERS or t.startswith(("l'", "d'", "qu'")) for t in toks)
    en = sum(t in _EN_MARKERS for t in toks)
    fr += len(re.findall(r"[éèêàùçôîœ]", text.lower())) * 0.5
    return "en" if en > fr else "fr"


# ---- spans a short answer can be -----------------------------------------------------------
_UPPER = r"[A-ZÀ-ÖØ-Þ]"
_NAME_TOKEN = rf"(?:{_UPPER}\.(?:-?{_UPPER}\.)*|{_UPPER}[\w’'\-]*[\w]|{_UPPER}|\d+[A-Za-z]\w*)"
_NAME_GLUE = r"(?:\s(?:de|du|des|von|van|der|da|di|le|la|pour|of|the|y|bin|al)\s)"
NAME_SPAN = re.compile(rf"{_NAME_TOKEN}(?:(?:\s|{_NAME_GLUE}){_NAME_TOKEN})*")

_NUM = r"\d{1,3}(?:[\s\u00a0\u202f]\d{3})+|\d+(?:[.,]\d+)?"
_SCALE = r"(?:milliards?|millions?|mille|billions?|trillions?|thousand|hundred|k|md|mds|m)"
_UNIT = r"(?:d['’]\s?)?(?:euros?|dollars?|€|\$|livres?|pounds?|yuans?|%|pour\s?cent|percent)"
MONEY_SPAN = re.compile(
    rf"(?:[€$£]\s?(?:{_NUM})(?:\s{_SCALE})?|(?:{_NUM})(?:\s{_SCALE})?(?:\s(?:de\s)?{_UNIT})|(?:{_NUM})\s{_SCALE}\b(?:\s(?:de|d['’])\s?\w+)?)",
    re.I,
)
_MONTHS = (
    r"(?:janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|"
    r"décembre|decembre|january|february|march|april|may|june|july|august|september|october|"
    r"november|december)"
)
DATE_SPAN = re.compile(
    rf"(?:(?:du|les|le|from|on)\s)?\d{{1,2}}(?:er)?(?:\s(?:et|au|à|-|to|and)\s\d{{1,2}}(?:er)?)?\s{_MONTHS}(?:\s\d{{4}})?"
    rf"|(?:en|in|depuis|since|d[eè]s)\s(?:{_MONTHS}(?:\s\d{{4}})?|\d{{4}})"
    rf"|{_MONTHS}\s(?:prochain|dernier|\d{{4}})"
    rf"|\b(?:19|20)\d{{2}}\b",
    re.I,
)
COUNT_SPAN = re.compile(
    rf"(?:{_NUM})(?:\s{_SCALE})?(?:\s(?:de\s|d['’])?[A-Za-zÀ-ÿ'’\-]+){{1,2}}"
    r"|\b(?:une?\s)?(?:centaine|dizaine|vingtaine|trentaine|quarantaine|cinquantaine|soixantaine|"
    r"millier|douzaine|quinzaine)s?\s(?:de\s|d['’])[A-Za-zÀ-ÿ'’\-]+(?:\s(?:de\s|d['’])?[A-Za-zÀ-ÿ'’\-]+)?"
    r"|\b(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|quinze|vingt|cent)\s[a-zà-ÿ'’\-]+",
    re.I,
)
PLACE_SPAN = re.compile(
    rf"\b(?:à|au|aux|en|dans|in|at)\s(?:l['’]|la\s|le\s|les\s)?(?![A-Z]{{2}}\b)(?:{_NAME_TOKEN}(?:(?:\s|{_NAME_GLUE}){_NAME_TOKEN})*)"
    rf"|\b(?:au|à\sl['’]|at\sthe)\s(?:siège|incubateur|institut|plateau|headquarters|campus)\s(?:\w+\s){{0,3}}?(?:de\s|du\s|des\s|d['’]|of\s)(?:l['’]|la\s|le\s|the\s)?{_NAME_TOKEN}(?:(?:\s|{_NAME_GLUE}){_NAME_TOKEN})*"
)
