"""The app's shared state (on ``app.state``, set by ``create_app``) and the dependencies that
reach it: the assistant, the ``core`` lock, the reload lock, the suggestions, the feedback store
and the settings."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import State
from starlette.exceptions import HTTPException

from assistant.service import Assistant

from .errors import NotReadyError

log = logging.getLogger("summit.api")

ADMIN_WAIT_SECONDS = 120  # an upload waits this long for another document change to finish


def current_assistant(request: Request) -> Assistant:
    """The loaded assistant, or 503 while it is not ready."""
    assistant = getattr(request.app.state, "assistant", None)
    if assistant is None or assistant.index is None:
        raise NotReadyError()
    return assistant


async def get_assistant(request: Request) -> Assistant:
    """Dependency form of ``current_assistant`` (async: no thread-pool hop for a lookup)."""
    return current_assistant(request)


async def get_state(request: Request) -> State:
    return request.app.state


async def get_core(request: Request) -> threading.Lock:
    return request.app.state.core


AssistantDep = Annotated[Assistant, Depends(get_assistant)]
StateDep = Annotated[State, Depends(get_state)]
CoreDep = Annotated[threading.Lock, Depends(get_core)]


def require_admin(state: State, authorization: str | None) -> None:
    """404 when no admin token is configured (the admin routes do not exist), 401 without a
    bearer token, 403 with a wrong one."""
    admin_token = state.api_settings.admin_token
    if not admin_token:
        raise HTTPException(404, "Not Found")
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(token.encode(), admin_token.encode()):
        raise HTTPException(403, "wrong admin token")


def warm_suggestions(state: State) -> None:
    """Ask the suggested questions of the build now serving (once per build)."""
    assistant = state.assistant
    if assistant is not None and assistant.index is not None:
        try:
            state.suggestions.for_index(assistant, state.core)
        except Exception:  # suggestions are a nicety: never fail a load or an upload over them
            log.exception("could not check the suggested questions")


def change_documents(state: State, work: Callable[[], dict]) -> dict:
    """Run an add or a delete: one at a time, questions waiting while the index is rebuilt."""
    if not state.reload_lock.acquire(timeout=ADMIN_WAIT_SECONDS):
        raise HTTPException(409, "another change to the documents is still running; try again")
    try:
        with state.core:
            result = work()
    finally:
        state.reload_lock.release()
    warm_suggestions(state)
    return result
