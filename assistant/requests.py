"""What a question may be: the limits and the text checks, defined once.

``Question`` is the request the library answers (``service.validate`` builds one and turns a
refusal into InvalidInputError); ``api.schemas.AskRequest`` is a ``Question`` with the HTTP
API's descriptions and its stricter text rule (a lone surrogate is refused there, cleaned here);
``/api/search`` and the OpenAI endpoint use the same checks.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from .errors import InvalidInputError
from .retrieval import MODES, Mode

MAX_QUESTION_CHARS = 1000
MAX_HISTORY = 20
MAX_K = 20

SURROGATE = re.compile("[\ud800-\udfff]")  # unpaired UTF-16 halves: JSON may carry them, they are not text


class TextTooLongError(ValueError):
    def __init__(self, what: str, length: int):
        self.what, self.length = what, length
        super().__init__(f"{what} is {length} characters long; the limit is {MAX_QUESTION_CHARS}")


def clean_text(text: str) -> str:
    """NUL bytes to spaces, lone surrogates (invalid UTF-16 halves) to U+FFFD."""
    return SURROGATE.sub("\ufffd", text.replace("\x00", " "))


def check_unicode(value: str, what: str) -> str:
    """Refuse an unpaired surrogate ("\\ud800"): it is not text and breaks the tokenizer."""
    if SURROGATE.search(value):
        raise ValueError(f"{what} contains an unpaired UTF-16 surrogate, which is not valid Unicode text")
    return value


def check_length(value: str, what: str) -> str:
    if len(value) > MAX_QUESTION_CHARS:
        raise TextTooLongError(what, len(value))
    return value


def check_text(value: str, what: str, *, refuse_surrogates: bool = True) -> str:
    """NUL to space, trim, then enforce 1..MAX_QUESTION_CHARS characters. Lone surrogates are
    refused (the API) or replaced by U+FFFD (``refuse_surrogates=False``, the library)."""
    text = (check_unicode(value, what) if refuse_surrogates else clean_text(value)).replace("\x00", " ").strip()
    if not text:
        raise ValueError(f"{what} is empty; ask something about the summit")
    return check_length(text, what)


def _clean_question(value: str) -> str:
    return check_text(value, "question", refuse_surrogates=False)


def _clean_history(items: list[str]) -> list[str]:
    for i, item in enumerate(items):
        check_length(item, f"history item {i}")
    return [clean_text(h).strip() for h in items if h.strip()]


class Question(BaseModel):
    """A question as the library answers it (k and mode already resolved to the defaults);
    text is cleaned: NUL to space, lone surrogates to U+FFFD, trimmed; blank history items dropped."""

    model_config = ConfigDict(extra="forbid")

    question: Annotated[StrictStr, AfterValidator(_clean_question)]
    history: Annotated[list[StrictStr], Field(max_length=MAX_HISTORY, strict=True), AfterValidator(_clean_history)] = []
    k: Annotated[StrictInt, Field(ge=1, le=MAX_K)]
    mode: Mode


def validate(question: object, history: object, k: object, mode: object) -> tuple[str, list[str], int, str]:
    """(question, history, k, mode) cleaned, or InvalidInputError saying which one is wrong."""
    try:
        q = Question(question=question, history=[] if history is None else history, k=k, mode=mode)
    except ValidationError as exc:
        raise InvalidInputError(_message(exc.errors()[0], k, mode)) from None
    return q.question, q.history, q.k, q.mode


def _message(err: Any, k: object, mode: object) -> str:
    """The library's sentence for the first thing pydantic refused."""
    field = err["loc"][0] if err["loc"] else ""
    cause = (err.get("ctx") or {}).get("error")
    if field == "question":
        return str(cause) if isinstance(cause, ValueError) else "question must be a string"
    if field == "history":
        if err["type"] == "too_long":
            return f"history has {err['ctx']['actual_length']} items; the limit is {MAX_HISTORY}"
        if isinstance(cause, TextTooLongError):
            return f"a history item is {cause.length} characters long; the limit is {MAX_QUESTION_CHARS}"
        return "history must be a list of previous questions (strings)"
    if field == "k":
        return f"k must be an integer from 1 to {MAX_K}, got {k!r}"
    if field == "mode":
        return f"mode must be one of {', '.join(MODES)}, got {mode!r}"
    return str(err.get("msg", "invalid question"))
