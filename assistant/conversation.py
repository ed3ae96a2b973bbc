"""Follow-up questions without a language model.

A question is a follow-up when it leans on the conversation: a pronoun or demonstrative ("he",
"it", "cette instance", "y"), an elliptic opener ("Et où ?", "What about Google?") or too few
words of its own. The previous question (resolved the same way, recursively) and its answer are
then carried into retrieval as weighted context; the answer type comes from the new question, or
from the previous one when the new question has none.
"""

from __future__ import annotations

import re

from . import text as textmod

_ANAPHORA = re.compile(
    r"\b(he|him|his|she|her|hers|it|its|they|them|their|this|that|these|those|there|then|"
    r"il|elle|ils|elles|lui|leur|leurs|son|sa|ses|celui|celle|ceux|celles|ce dernier|cette|cet|ces|"
    r"là|y|en)\b",
    re.I,
)
_ELLIPSIS = re.compile(r"^\s*(et|and|what about|how about|ou|or|mais|but|aussi|also|puis|then)\b", re.I)
MAX_CONTEXT_DEPTH = 3
CONTEXT_WEIGHT = 0.6


def is_follow_up(question: str, history: list[str]) -> bool:
    if not history:
        return False
    if _ELLIPSIS.search(question):
        return True
    if len(textmod.content_words(question)) <= 1:
        return True
    return bool(_ANAPHORA.search(question.translate(textmod.APOSTROPHES)))


def is_elliptic(question: str) -> bool:
    """A fragment that only makes sense as a continuation: "Et celui de Google ?", "What about Meta?"."""
    return bool(_ELLIPSIS.search(question)) or len(textmod.content_words(question)) <= 1
