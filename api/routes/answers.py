"""Questions: /api/ask, /api/search, /api/feedback, /api/suggestions."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Response as FastAPIResponse
from starlette.exceptions import HTTPException

from assistant.errors import InvalidInputError
from assistant.requests import MAX_K, MAX_QUESTION_CHARS

from ..deps import AssistantDep, CoreDep, StateDep
from ..errors import ERRORS
from ..schemas import (
    AnswerResponse,
    AskRequest,
    ErrorResponse,
    FeedbackRequest,
    FeedbackStored,
    Mode,
    SearchResponse,
    SuggestionsResponse,
    check_text,
)

router = APIRouter(tags=["answers"])


@router.post("/api/ask", response_model=AnswerResponse, responses={422: ERRORS[422], 503: ERRORS[503]})
def ask(body: AskRequest, assistant: AssistantDep, response: FastAPIResponse, core: CoreDep) -> dict[str, Any]:
    """Answer a question with numbered citations, or say that the sources do not hold it.
    The ``X-Summit-Build`` header names the index build that answered; ``Server-Timing`` says
    how long the request waited for the answering core and how long answering took (ms)."""
    t0 = time.perf_counter()
    with core:
        t1 = time.perf_counter()
        answer = assistant.ask(body.question, history=body.history, k=body.k, mode=body.mode).to_dict()
        t2 = time.perf_counter()
        if assistant.index is not None:
            response.headers["X-Summit-Build"] = assistant.index.build_id
    response.headers["Server-Timing"] = f"wait;dur={(t1 - t0) * 1000:.2f}, answer;dur={(t2 - t1) * 1000:.2f}"
    return answer


@router.get("/api/search", response_model=SearchResponse, responses={422: ERRORS[422], 503: ERRORS[503]})
def search(
    assistant: AssistantDep,
    core: CoreDep,
    q: Annotated[str, Query(description=f"The query, 1 to {MAX_QUESTION_CHARS} characters once trimmed.",
                            examples=["co-présidence du sommet"])],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many passages; the server's default (SUMMIT_TOP_K, 5 unless set) when omitted.")] = None,  # type: ignore[assignment]
    mode: Annotated[Mode | None, Query(description="Retrieval mode; the server's default (SUMMIT_MODE, hybrid unless set) when omitted.")] = None,
) -> dict[str, Any]:
    """Ranked passages for a query, without answer extraction."""
    try:
        query = check_text(q, "q")
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    with core:
        results = assistant.search(query, k=k, mode=mode)
    return {"query": query, "results": [c.__dict__ for c in results]}


@router.post("/api/feedback", status_code=201, response_model=FeedbackStored,
             responses={404: {"model": ErrorResponse, "description": "Feedback is turned off"}, 422: ERRORS[422],
                        503: {"model": ErrorResponse, "description": "The feedback file cannot take more"}})
def feedback(body: FeedbackRequest, state: StateDep) -> dict[str, Any]:
    """Store a thumbs-up or thumbs-down on an answer (append-only JSONL on the server):
    question, history, answer, citations, the build that answered, verdict."""
    store = state.feedback
    if store is None:
        raise HTTPException(404, "feedback is turned off on this server (SUMMIT_FEEDBACK_FILE is empty)")
    assistant = getattr(state, "assistant", None)
    current = assistant.index.build_id if assistant is not None and assistant.index is not None else None
    record = store.append(body.model_dump(), build_id=current)
    return {"stored": True, "ts": record["ts"], "build_id": record["build_id"]}


@router.get("/api/suggestions", response_model=SuggestionsResponse, responses={503: ERRORS[503]})
def suggestions(assistant: AssistantDep, state: StateDep) -> dict[str, Any]:
    """The configured suggested questions (SUMMIT_SUGGESTED_QUESTIONS) that the current index
    answers, with their language; checked once per index build."""
    return state.suggestions.for_index(assistant, state.core)
