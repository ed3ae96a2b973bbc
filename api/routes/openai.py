"""The OpenAI-compatible endpoint: /v1/models and /v1/chat/completions."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from assistant.answering import Answer
from assistant.errors import InvalidInputError
from assistant.requests import MAX_HISTORY, MAX_QUESTION_CHARS, check_unicode

from ..deps import AssistantDep, CoreDep, StateDep
from ..errors import ERRORS
from ..schemas import (
    MODEL_ID,
    ChatChoice,
    ChatChoiceMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    ModelCard,
    ModelList,
)

router = APIRouter(tags=["openai"])


def conversation(messages: list[ChatMessage]) -> tuple[str, list[str]]:
    """Question = last user message; history = the user messages before it (the most recent
    MAX_HISTORY, each cut to MAX_QUESTION_CHARS: a long chat must not start failing).
    System and assistant messages are ignored."""
    try:
        users = [check_unicode(m.text(), "a user message") for m in messages if m.role == "user"]
    except ValueError as exc:
        raise InvalidInputError(f"messages: {exc}") from None
    if not users:
        raise InvalidInputError("messages: there is no user message to answer")
    history = [h[:MAX_QUESTION_CHARS] for h in users[:-1] if h.strip()][-MAX_HISTORY:]
    return users[-1], history


def reply_text(answer: Answer) -> str:
    """The chat reply: the answer with its [1] marker and a short numbered source list."""
    if not answer.found or not answer.citations:
        return answer.answer
    lines = [f"{answer.answer} [{answer.citations[0].n}]", "", "Sources:"]
    for c in answer.citations:
        line = f"[{c.n}] {c.title} — {c.source}"
        if c.published:
            line += f", {c.published}"
        if c.url:
            line += f" <{c.url}>"
        lines.append(line)
    return "\n".join(lines)


def sse_chunks(completion_id: str, created: int, content: str, extra: dict[str, Any]) -> Iterator[bytes]:
    """OpenAI's streaming format: a role chunk, content chunks (a few words each), a final chunk
    with finish_reason "stop" carrying the citations, then ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})
    words = re.findall(r"\S+\s*|\s+", content)
    for i in range(0, len(words), 4):
        yield chunk({"content": "".join(words[i : i + 4])})
    yield chunk({}, "stop", **extra)
    yield b"data: [DONE]\n\n"


@router.get("/v1/models", response_model=ModelList)
async def models(state: StateDep) -> ModelList:
    """The single model this server offers."""
    return ModelList(data=[ModelCard(created=state.started)])


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse,
             responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream is true"},
                        422: ERRORS[422], 503: ERRORS[503]})
def chat_completions(body: ChatCompletionRequest, assistant: AssistantDep, core: CoreDep) -> Any:
    """Last user message = the question, earlier user messages = the history. The reply
    carries [n] markers and a Sources list; structured citations are in ``citations``."""
    question, history = conversation(body.messages)
    with core:
        answer = assistant.ask(question, history=history)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    citations = [c.__dict__ for c in answer.citations]
    content = reply_text(answer)
    if body.stream:
        return StreamingResponse(
            sse_chunks(completion_id, created, content, {"citations": citations, "found": answer.found}),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return ChatCompletionResponse(id=completion_id, created=created, citations=citations, found=answer.found,
                                  choices=[ChatChoice(message=ChatChoiceMessage(content=content))])
