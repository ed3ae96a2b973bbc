"""Follow-up questions without a language model and without a list of trigger words.

Every question asked with a history carries its conversation: the earlier questions (each
resolved the same way, up to three turns back) and their short answers join retrieval as
weighted context, the weight shrinking with every turn back. Nothing decides "this is a
follow-up" from the words it uses: a question that stands on its own is carried by its own
words (weight 1) and the context only breaks ties, while a question leaning on the conversation
("Et où ?", "What did she announce?") has few words of its own, so the context decides.

The asked type comes from the new question; a question with no type of its own and at most one
content word ("Et celui de Google ?") asks for the same type as the question before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from . import text as textmod

MAX_CONTEXT_DEPTH = 3
CONTEXT_WEIGHT = 0.6  # default; `summit fit` may tune it on the dev split (weights.json settings)
ANSWER_WEIGHT = 0.6  # default; `summit fit` tunes it on the dev split too
DECAY = 0.5  # each turn further back counts this much less


@dataclass
class Turn:
    question: str
    context: list[tuple[str, float]] = field(default_factory=list)
    previous_type: str | None = None  # the asked type of the question before
    previous_sid: int | None = None  # the sentence that answered the question before
    previous_doc: str | None = None  # ... and its document
    answers: tuple[str, ...] = ()  # the short answers given so far in the conversation, newest first


def follow(question: str, previous: Turn, previous_answer, settings: dict | None = None) -> Turn:
    """The context of ``question`` after ``previous`` (already resolved) was answered."""
    settings = settings or {}
    w = float(settings.get("context_weight", CONTEXT_WEIGHT))
    wa = float(settings.get("answer_weight", ANSWER_WEIGHT))
    context = [(previous.question, w)]
    answers = previous.answers
    if previous_answer is not None and previous_answer.found and previous_answer.span_type:
        context.append((previous_answer.answer, wa))
        answers = (previous_answer.answer, *answers)
    elif previous_answer is not None and previous_answer.found and getattr(previous_answer, "focus", None):
        # a whole sentence answered: the span it was chosen for is still what "she" or "it"
        # most likely means
        context.append((previous_answer.focus, wa))
    context += [(c, cw * DECAY) for c, cw in previous.context]
    prev_type = prev_sid = prev_doc = None
    if previous_answer is not None:
        prev_type = getattr(previous_answer, "asked_type", None)
        if previous_answer.found:
            prev_sid, prev_doc = getattr(previous_answer, "sid", None), getattr(previous_answer, "doc_id", None)
    return Turn(question, context, prev_type, prev_sid, prev_doc, answers[:MAX_CONTEXT_DEPTH])


def attach(query, turn: Turn):
    """Carry where the conversation was (the previous answer's sentence and document) into the
    query: a follow-up usually continues the same article, often the same passage. What the
    conversation has already answered goes along too: a follow-up asks for something new, so a
    span made only of words an earlier answer gave is not its answer ("les 3 et 4 mars" again,
    for "and when does the festival week start?")."""
    query.previous_sid, query.previous_doc = turn.previous_sid, turn.previous_doc
    query.answered = frozenset(textmod.fold(w) for a in turn.answers for w in textmod.words(a))
    return inherit_type(query, turn)


def inherit_type(query, turn: Turn):
    """An elliptic question ("Et en quelle année ?" has its own type; "Et celui de Google ?"
    does not) asks for the type of the question before it. One that asks why or how, or who
    someone is, has no span type by design and keeps none."""
    if (query.qtype.answer_type is None and query.qtype.wh in ("what", "other") and turn.previous_type
            and len(textmod.content_words(query.text, question=True)) <= 1):
        query.qtype = dataclasses.replace(query.qtype, answer_type=turn.previous_type)
    return query
