"""Sentence-aware chunking with exact character offsets into the cleaned document text.

Sentences end at . ! ? … (plus closing quotes) followed by space and a capital, a digit or an
opening quote; never after an abbreviation ("M.", "Dr.", "etc.") or an initial ("K.T. Morohashi").
Each paragraph (line) is split into sentences; chunks are windows of a few sentences with
overlap, kept within a paragraph, and record the span of every sentence they hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Abbreviations after which a period does not end a sentence (compared lower-case, without the dot).
ABBREVIATIONS = frozenset(
    """m mm mme mmes mlle mlles dr drs pr prof st ste me mgr gén gen col cdt lt sgt cf ex p pp
    vol no n° art al fig env av apr j.-c mr mrs ms jr sr vs inc ltd co corp dept univ approx est
    sen rep gov capt cpt adm maj hon rev messrs
    min max tél tel janv févr fév avr juil sept oct nov déc jan feb mar apr jun jul aug sep dec""".split()
)
_END = re.compile(r"[.!?…]+(?:\s?[\"'»”’)\]])*")
_NEXT_START = re.compile(r"\s+[\"'«“(\[]?\s*[A-ZÀ-ÖØ-Þ0-9\"«“]")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...]


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the period at ``dot`` closes an abbreviation or an initial."""
    if text[dot] != ".":
        return False
    i = dot
    while i > 0 and not text[i - 1].isspace() and text[i - 1] not in "«“\"'(":
        i -= 1
    token = text[i:dot]
    if not token:
        return False
    # Initials: "J", "J.D", "A.-M" -> single letters separated by dots or hyphens.
    if re.fullmatch(r"[A-ZÀ-Þ]|(?:[A-ZÀ-Þ]\.-?)+[A-ZÀ-Þ]", token):
        return True
    return token.lower().rstrip(".") in ABBREVIATIONS


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Sentence]:
    """Sentence spans in ``text[start:end]``, stripped of surrounding white space."""
    end = len(text) if end is None else end
    spans: list[Sentence] = []
    cursor = start
    pos = start
    while pos < end:
        m = _END.search(text, pos, end)
        if not m:
            break
        stop = m.end()
        nxt = _NEXT_START.match(text, stop, end)
        if nxt and not (m.group().startswith(".") and len(m.group()) == 1 and _is_abbreviation(text, m.start())):
            spans.append(Sentence(cursor, stop))
            cursor = stop
        pos = stop
    spans.append(Sentence(cursor, end))
    out = []
    for s in spans:
        a, b = s.start, s.end
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append(Sentence(a, b))
    return out


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for line in text.split("\n"):
        if line.strip():
            spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def chunk_document(
    doc_id: str, text: str, *, sentences_per_chunk: int = 3, overlap: int = 1, max_chars: int = 1200
) -> list[Chunk]:
    """Windows of ``sentences_per_chunk`` sentences, ``overlap`` shared between neighbours.

    A window also closes early when it would pass ``max_chars``. Windows never cross paragraphs.
    """
    if sentences_per_chunk < 1:
        raise ValueError(f"sentences_per_chunk must be at least 1, got {sentences_per_chunk}")
    if not 0 <= overlap < sentences_per_chunk:
        raise ValueError(f"overlap must be between 0 and sentences_per_chunk - 1, got {overlap}")
    chunks: list[Chunk] = []
    for p_start, p_end in paragraph_spans(text):
        sents = split_sentences(text, p_start, p_end)
        i = 0
        while i < len(sents):
            j = i + 1
            while (
                j < len(sents)
                and j - i < sentences_per_chunk
                and sents[j].end - sents[i].start <= max_chars
            ):
                j += 1
            window = tuple(sents[i:j])
            a, b = window[0].start, window[-1].end
            chunks.append(Chunk(f"{doc_id}#{len(chunks)}", doc_id, a, b, text[a:b], window))
            if j >= len(sents):
                break
            i = max(j - overlap, i + 1)
    return chunks
