"""Every error leaves as JSON ``{"detail": "..."}`` (under /v1 also OpenAI's ``error`` object).
Library errors are mapped to 4xx/503 by class; a last-resort handler turns anything else into
a 500 without a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from assistant.errors import (
    DocumentError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    IngestError,
    InvalidInputError,
    ModelError,
    StoreUnavailableError,
    SummitError,
)
from assistant.feedback import FeedbackFullError

from .schemas import ErrorResponse

log = logging.getLogger("summit.api")

RETRY_LOADING_SECONDS = 5
# HTTP status of each IngestError reason.
INGEST_STATUS = {"too_large": 413, "unsupported": 415, "duplicate": 409, "empty": 422, "invalid": 422, "not_found": 404}

# The error responses the routes document in the OpenAPI schema.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "The body could not be read at all (not UTF-8, nested too deeply, bad Content-Length)",
        413: "Body larger than max_body_bytes",
        422: "Invalid input: the detail says which field and why",
        429: "Rate limit exceeded (see Retry-After)",
        503: "The assistant is still loading, or its index store (Milvus) is unreachable (see Retry-After)",
    }.items()
}


class StartupError(RuntimeError):
    """The assistant could not be loaded at startup (bad documents, unusable model, ...)."""


class NotReadyError(Exception):
    """The assistant is not loaded yet (or the lifespan did not run)."""


def error_body(path: str, status: int, detail: str) -> dict[str, Any]:
    """``{"detail": ...}`` everywhere; under /v1 also OpenAI's ``error`` object, which is what
    OpenAI clients read to build their exception message."""
    body: dict[str, Any] = {"detail": detail}
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        body["error"] = {"message": detail, "type": kind, "param": None, "code": status}
    return body


def error_response(path: str, status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(path, status, detail), status_code=status, headers=headers)


def status_for(exc: SummitError) -> int:
    """The HTTP status of a library error: the caller's fault is 4xx, a broken server is 503."""
    if isinstance(exc, InvalidInputError):
        return 422
    if isinstance(exc, IngestError):
        return INGEST_STATUS.get(exc.reason, 422)
    if isinstance(exc, FeedbackFullError):
        return 503
    if isinstance(exc, DocumentError):
        return 409  # admin reload over a bad document; the previous index keeps serving
    if isinstance(exc, (IndexMissingError, IndexMismatchError, IndexCorruptError, ModelError, StoreUnavailableError)):
        return 503
    return 400


def describe_validation(errors: list[Any]) -> str:
    """Pydantic's error list as one sentence naming each field ("k: Input should be ...")."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        kind, msg = err.get("type", ""), str(err.get("msg", "invalid value"))
        if kind == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "decode error")
            parts.append(f"the request body is not valid JSON: {reason}" + (f" (at character {loc[0]})" if loc else ""))
            continue
        if not loc and kind == "missing":
            parts.append("the request body is missing; send a JSON object with Content-Type: application/json")
            continue
        if not loc and kind in ("model_attributes_type", "dict_type", "model_type"):
            parts.append("the request body must be a JSON object sent with Content-Type: application/json")
            continue
        msg = msg.removeprefix("Value error, ").replace(" after validation", "")
        named = loc and msg.startswith(f"{loc[-1]} ")  # our own messages already name the field
        parts.append(f"{'.'.join(loc)}: {msg}" if loc and not named else msg)
    return "; ".join(parts) or "invalid request"


def store_problem(request: Request) -> str | None:
    """Why a Milvus replica cannot answer right now (unreachable, no index yet, ...), or None."""
    follower = getattr(request.app.state, "follower", None)
    return None if follower is None else follower.problem


async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(request.url.path, 422, describe_validation(list(exc.errors())))


async def on_summit(request: Request, exc: SummitError) -> JSONResponse:
    status = status_for(exc)
    retry = str(getattr(exc, "retry_after", 30))
    return error_response(request.url.path, status, str(exc), {"Retry-After": retry} if status == 503 else None)


async def on_not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
    problem = store_problem(request)
    return error_response(request.url.path, 503, problem or "the assistant is still loading; try again in a few seconds",
                          {"Retry-After": str(RETRY_LOADING_SECONDS)})


async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(request.url.path, exc.status_code, str(exc.detail), getattr(exc, "headers", None))


async def on_crash(request: Request, exc: Exception) -> JSONResponse:
    request.app.state.internal_errors += 1
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    response = error_response(request.url.path, 500, "internal error; it has been logged")
    response.headers["X-Content-Type-Options"] = "nosniff"  # this one bypasses the middleware
    return response


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(SummitError, on_summit)  # type: ignore[arg-type]
    app.add_exception_handler(NotReadyError, on_not_ready)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_crash)
