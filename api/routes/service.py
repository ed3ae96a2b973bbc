"""The service itself: /api/health and /api/admin/reload."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.exceptions import HTTPException

from ..deps import StateDep, current_assistant, require_admin, warm_suggestions
from ..errors import ERRORS, RETRY_LOADING_SECONDS, error_response, store_problem
from ..schemas import ErrorResponse, HealthResponse, ReloadResponse

log = logging.getLogger("summit.api")

router = APIRouter(tags=["service"])


@router.get("/api/health", response_model=HealthResponse, responses={503: ERRORS[503]})
async def health(request: Request) -> Any:
    """Ready when the model and the index are loaded (503 before, and while the index store is
    unreachable, with the reason)."""
    problem = store_problem(request)
    if problem is not None:
        return error_response(request.url.path, 503, problem, {"Retry-After": str(RETRY_LOADING_SECONDS)})
    assistant = current_assistant(request)
    index = assistant.index
    assert index is not None
    counts = index.counts()
    return HealthResponse(documents=counts["documents"], chunks=counts["chunks"], model=assistant.embedder.id,
                          build_id=index.build_id, store=getattr(index, "kind", "faiss"))


@router.post("/api/admin/reload", response_model=ReloadResponse,
             responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
                        404: {"model": ErrorResponse, "description": "No admin token is configured"},
                        409: {"model": ErrorResponse, "description": "A reload is running, or a document is invalid"}})
def reload(request: Request, state: StateDep, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Rebuild the index when the documents changed (else load the current build from disk)
    and switch to it. Questions wait during a rebuild (see ``core``); a failed build keeps
    the previous index. Needs ``Authorization: Bearer <SUMMIT_ADMIN_TOKEN>``; absent when
    no token is set."""
    require_admin(state, authorization)
    assistant = current_assistant(request)  # after the auth check: say nothing to strangers
    if not state.reload_lock.acquire(blocking=False):
        raise HTTPException(409, "a reload is already running")
    try:
        with state.core:  # a build stems and embeds too; questions wait for the switch
            summary = assistant.build()
        if not summary["built"]:
            summary = {**assistant.reload(), "built": False, "reason": "documents unchanged; reloaded the current build"}
    finally:
        state.reload_lock.release()
    log.info("reloaded: build %s (%s)", summary["build_id"], summary["reason"])
    warm_suggestions(state)
    return {"build_id": summary["build_id"], "built": summary["built"], "reason": summary["reason"]}
