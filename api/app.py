"""The FastAPI application: JSON API, OpenAI-compatible endpoint and the chat widget.

One ``Assistant`` per process, loaded once in the lifespan (or injected by tests). Routes that
touch the model are plain ``def`` functions so FastAPI runs them in its thread pool and the event
loop stays free. Every error leaves as JSON ``{"detail": "..."}``; library errors are mapped to
4xx/503 by class, and a last-resort handler turns anything else into a 500 without a traceback.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Response as FastAPIResponse
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant import __version__
from assistant.answering import Answer
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
from assistant.feedback import FeedbackFullError, FeedbackStore
from assistant.suggestions import Suggestions
from assistant.requests import MAX_HISTORY, MAX_K, MAX_QUESTION_CHARS
from assistant.service import Assistant
from assistant.settings import Settings

from .settings import ApiSettings

from .schemas import (
    MODEL_ID,
    AnswerResponse,
    AskRequest,
    ChatChoice,
    ChatChoiceMessage,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    DocumentAdded,
    DocumentDeleted,
    DocumentFull,
    DocumentMeta,
    ErrorResponse,
    FeedbackRequest,
    FeedbackStored,
    HealthResponse,
    ModelCard,
    ModelList,
    Mode,
    ReloadResponse,
    SearchResponse,
    SuggestionsResponse,
    check_text,
    check_unicode,
)

log = logging.getLogger("summit.api")

STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/widget.js": ("widget.js", "text/javascript; charset=utf-8"),
    "/widget.css": ("widget.css", "text/css; charset=utf-8"),
    "/demo.css": ("demo.css", "text/css; charset=utf-8"),  # the demo page only; embedders skip it
}
RATE_LIMITED_PREFIXES = ("/api/", "/v1/")
RATE_LIMIT_EXEMPT = frozenset({"/api/health"})
RETRY_LOADING_SECONDS = 5
UPLOAD_PATH = "/api/documents"  # POST: multipart upload, limited by max_upload_bytes instead of max_body_bytes
UPLOAD_FIELDS = ("id", "title", "source", "published", "url", "language", "replace")
# HTTP status of each IngestError reason.
INGEST_STATUS = {"too_large": 413, "unsupported": 415, "duplicate": 409, "empty": 422, "invalid": 422, "not_found": 404}
ADMIN_WAIT_SECONDS = 120  # an upload waits this long for another document change to finish


class StartupError(RuntimeError):
    """The assistant could not be loaded at startup (bad documents, unusable model, ...)."""


class NotReadyError(Exception):
    """The assistant is not loaded yet (or the lifespan did not run)."""


# ---- error bodies ------------------------------------------------------------------------------


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


# ---- middleware (plain ASGI: cheap, and they also cover responses made by other middleware) ----


class BodyTooLargeError(Exception):
    """Raised from ``receive`` of a streamed path when more than its limit has arrived."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the request body is larger than the limit of {limit} bytes")


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: refuse early on Content-Length, and count the bytes
    actually received (chunked uploads send no length). The body is buffered, which is fine at
    this size, and replayed to the app.

    ``streamed`` maps (method, path) to a larger limit for uploads: those bodies are not buffered
    (the route checks the caller before reading them); past the limit ``receive`` raises
    BodyTooLargeError, which the route answers with a 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, streamed: dict[tuple[str, str], int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        limit = self.streamed.get((scope.get("method", ""), scope.get("path", "")))
        if limit is not None:
            if length is not None and (not length.isdigit() or int(length) > limit):
                detail = f"the request body is larger than the limit of {limit} bytes" if length.isdigit() else "invalid Content-Length header"
                await error_response(scope["path"], 413 if length.isdigit() else 400, detail)(scope, receive, send)
                return
            received = 0

            async def counted() -> Message:
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
                return message

            await self.app(scope, counted, send)
            return
        too_large = f"the request body is larger than the limit of {self.max_bytes} bytes"
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            detail = too_large if length.isdigit() else "invalid Content-Length header"
            await error_response(scope["path"], 413 if length.isdigit() else 400, detail)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await error_response(scope["path"], 413, too_large)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SlidingWindow:
    """Per-key sliding window of ``limit`` hits per ``window`` seconds, in memory.

    ``hit`` returns 0 when allowed, else the seconds to wait. Runs on the event loop only, so
    it needs no lock. The clock is injectable for tests."""

    MAX_KEYS = 10_000

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> int:
        now = self.clock()
        if len(self.hits) > self.MAX_KEYS:  # forget idle clients so memory stays bounded
            self.hits = {k: q for k, q in self.hits.items() if q and q[-1] > now - self.window}
        q = self.hits.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return max(1, math.ceil(q[0] + self.window - now))
        q.append(now)
        return 0


class RateLimitMiddleware:
    """429 with Retry-After when a client IP exceeds the per-minute limit on /api and /v1."""

    def __init__(self, app: ASGIApp, limiter: SlidingWindow) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(RATE_LIMITED_PREFIXES) and path not in RATE_LIMIT_EXEMPT:
            client = scope.get("client")
            wait = self.limiter.hit(client[0] if client else "unknown")
            if wait:
                detail = f"too many requests: the limit is {self.limiter.limit} per minute; retry in {wait} s"
                await error_response(path, 429, detail, {"Retry-After": str(wait)})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` on every response, whoever made it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-content-type-options"]
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class JSONCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with refused preflights answered in JSON like every other error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code >= 400:
            reason = bytes(response.body).decode(errors="replace")
            hint = "the server lists allowed origins in SUMMIT_CORS_ORIGINS" + ("" if self.allow_origins else " (empty: same origin only)")
            return JSONResponse({"detail": f"{reason}; {hint}"}, status_code=response.status_code)
        return response


def content_security_policy(settings: ApiSettings) -> str:
    """Strict CSP for the demo page and the widget files: no inline code, our own origin only."""
    connect = " ".join(["'self'", *settings.cors_origins])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )


# ---- OpenAI-compatible helpers -----------------------------------------------------------------


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


# ---- the app -----------------------------------------------------------------------------------


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


def store_problem(request: Request) -> str | None:
    """Why a Milvus replica cannot answer right now (unreachable, no index yet, ...), or None."""
    follower = getattr(request.app.state, "follower", None)
    return None if follower is None else follower.problem


def current_assistant(request: Request) -> Assistant:
    """The loaded assistant, or 503 while it is not ready."""
    assistant = getattr(request.app.state, "assistant", None)
    if assistant is None or assistant.index is None:
        raise NotReadyError()
    return assistant


async def get_assistant(request: Request) -> Assistant:
    """Dependency form of ``current_assistant`` (async: no thread-pool hop for a lookup)."""
    return current_assistant(request)


AssistantDep = Annotated[Assistant, Depends(get_assistant)]


def _mount_offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its assets from the installed swagger-ui-bundle package."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # pragma: no cover - a dependency; without it /docs is simply absent
        return
    app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )


def create_app(settings: Settings | None = None, assistant: Assistant | None = None,
               api_settings: ApiSettings | None = None) -> FastAPI:
    """Build the app. With ``assistant`` (already loaded) nothing is loaded at startup; otherwise
    the lifespan loads the model and the index once, building the index if it is missing, stale
    or damaged (the reason is logged). ``api_settings``: default from the environment."""
    settings = settings or (assistant.settings if assistant is not None else Settings())
    api_settings = api_settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.store == "milvus":
            # A replica of a shared index: never builds; loads the published build (retrying
            # while Milvus is unreachable or empty, /api/health says why) and follows new ones.
            from assistant.milvus_store import Follower

            if app.state.assistant is None:
                app.state.assistant = Assistant(settings)
            app.state.follower = Follower(app.state.assistant).start()
            try:
                yield
            finally:
                app.state.follower.stop()
            return
        if app.state.assistant is None:
            log.info("loading the model and the index from %s", settings.index_dir)
            try:
                app.state.assistant = await anyio.to_thread.run_sync(lambda: Assistant(settings).load(rebuild="any", background_model=True))
            except SummitError as exc:  # the message says what to fix; the library's stack would only hide it
                raise StartupError(f"cannot start: {exc}") from None
            log.info("ready: build %s", app.state.assistant.index.build_id)
            await anyio.to_thread.run_sync(warm_suggestions)
        yield

    app = FastAPI(
        title="Summit Assistant",
        version=__version__,
        description=(
            "Answers questions (French or English) about the Paris AI Action Summit with cited passages "
            "from French press articles, or says the sources do not hold the answer. Also speaks the "
            "OpenAI chat-completions protocol under /v1."
        ),
        lifespan=lifespan,
        responses={k: v for k, v in ERRORS.items() if k in (400, 413, 429)},
        docs_url=None,  # served below from the swagger-ui-bundle package: no CDN, works offline
        redoc_url=None,
        # No 307 from "/api/ask/" to "/api/ask": an empty, non-JSON reply whose Location echoes the
        # client's Host header. Exact paths only; a trailing slash gets the JSON 404.
        redirect_slashes=False,
    )
    _mount_offline_docs(app)
    app.state.assistant = assistant
    app.state.settings = settings
    app.state.api_settings = api_settings
    app.state.started = int(time.time())
    app.state.internal_errors = 0  # tests check that no bad input ever gets here
    app.state.reload_lock = threading.Lock()
    app.state.suggestions = Suggestions(settings.suggested_questions)
    app.state.feedback = FeedbackStore(Path(settings.feedback_file)) if settings.feedback_file.strip() else None
    # One request at a time inside the library: it is not thread-safe yet (shared Snowball
    # stemmer objects, an unlocked LRU of embeddings), and with its thread pools pinned to
    # `threads` cores, parallel calls would only compete for them. Lift once assistant/ is safe.
    core = threading.Lock()
    csp = content_security_policy(api_settings)

    # Added innermost first: headers wrap CORS wraps the rate limit wraps the body limit.
    # An upload may be as large as max_upload_bytes plus the multipart framing around the file.
    app.add_middleware(BodyLimitMiddleware, max_bytes=api_settings.max_body_bytes,
                       streamed={("POST", UPLOAD_PATH): settings.max_upload_bytes + 64_000})
    if api_settings.rate_limit_per_minute > 0:
        app.add_middleware(RateLimitMiddleware, limiter=SlidingWindow(api_settings.rate_limit_per_minute))
    app.add_middleware(
        JSONCORSMiddleware,
        allow_origins=api_settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "Accept"],
        expose_headers=["Retry-After", "X-Summit-Build"],
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware)

    # ---- error handlers ----
    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request.url.path, 422, describe_validation(list(exc.errors())))

    @app.exception_handler(SummitError)
    async def on_summit(request: Request, exc: SummitError) -> JSONResponse:
        status = status_for(exc)
        retry = str(getattr(exc, "retry_after", 30))
        return error_response(request.url.path, status, str(exc), {"Retry-After": retry} if status == 503 else None)

    @app.exception_handler(NotReadyError)
    async def on_not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
        problem = store_problem(request)
        return error_response(request.url.path, 503, problem or "the assistant is still loading; try again in a few seconds",
                              {"Retry-After": str(RETRY_LOADING_SECONDS)})

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(request.url.path, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        app.state.internal_errors += 1
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        response = error_response(request.url.path, 500, "internal error; it has been logged")
        response.headers["X-Content-Type-Options"] = "nosniff"  # this one bypasses the middleware
        return response

    # ---- JSON API ----
    @app.get("/api/health", response_model=HealthResponse, tags=["service"], responses={503: ERRORS[503]})
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

    @app.post("/api/ask", response_model=AnswerResponse, tags=["answers"], responses={422: ERRORS[422], 503: ERRORS[503]})
    def ask(body: AskRequest, assistant: AssistantDep, response: FastAPIResponse) -> dict[str, Any]:
        """Answer a question with numbered citations, or say that the sources do not hold it.
        The ``X-Summit-Build`` header names the index build that answered."""
        with core:
            answer = assistant.ask(body.question, history=body.history, k=body.k, mode=body.mode).to_dict()
            if assistant.index is not None:
                response.headers["X-Summit-Build"] = assistant.index.build_id
        return answer

    @app.get("/api/search", response_model=SearchResponse, tags=["answers"], responses={422: ERRORS[422], 503: ERRORS[503]})
    def search(
        assistant: AssistantDep,
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

    @app.get("/api/documents", response_model=list[DocumentMeta], tags=["documents"], responses={503: ERRORS[503]})
    def documents(assistant: AssistantDep) -> list[dict[str, Any]]:
        """The indexed articles and their metadata."""
        return assistant.documents()

    @app.get("/api/documents/{doc_id}", response_model=DocumentFull, tags=["documents"],
             responses={404: {"model": ErrorResponse, "description": "No such document"}, 503: ERRORS[503]})
    def document(doc_id: str, assistant: AssistantDep) -> dict[str, Any]:
        """One article with its cleaned text: citation offsets point into ``text``."""
        doc = assistant.document(doc_id)
        if doc is None:
            raise HTTPException(404, f"no document with id {doc_id!r}; GET /api/documents lists them")
        return doc

    @app.post("/api/admin/reload", response_model=ReloadResponse, tags=["service"],
              responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
                         404: {"model": ErrorResponse, "description": "No admin token is configured"},
                         409: {"model": ErrorResponse, "description": "A reload is running, or a document is invalid"}})
    def reload(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Rebuild the index when the documents changed (else load the current build from disk)
        and switch to it. Questions wait during a rebuild (see ``core``); a failed build keeps
        the previous index. Needs ``Authorization: Bearer <SUMMIT_ADMIN_TOKEN>``; absent when
        no token is set."""
        require_admin(authorization)
        assistant = current_assistant(request)  # after the auth check: say nothing to strangers
        if not app.state.reload_lock.acquire(blocking=False):
            raise HTTPException(409, "a reload is already running")
        try:
            with core:  # a build stems and embeds too; questions wait for the switch
                summary = assistant.build()
            if not summary["built"]:
                summary = {**assistant.reload(), "built": False, "reason": "documents unchanged; reloaded the current build"}
        finally:
            app.state.reload_lock.release()
        log.info("reloaded: build %s (%s)", summary["build_id"], summary["reason"])
        warm_suggestions()
        return {"build_id": summary["build_id"], "built": summary["built"], "reason": summary["reason"]}

    # ---- adding and deleting documents, feedback, suggestions ----
    def require_admin(authorization: str | None) -> None:
        """404 when no admin token is configured (the admin routes do not exist), 401 without a
        bearer token, 403 with a wrong one."""
        if not api_settings.admin_token:
            raise HTTPException(404, "Not Found")
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(token.encode(), api_settings.admin_token.encode()):
            raise HTTPException(403, "wrong admin token")

    def warm_suggestions() -> None:
        """Ask the suggested questions of the build now serving (once per build)."""
        assistant = app.state.assistant
        if assistant is not None and assistant.index is not None:
            try:
                app.state.suggestions.for_index(assistant, core)
            except Exception:  # suggestions are a nicety: never fail a load or an upload over them
                log.exception("could not check the suggested questions")

    def change_documents(work: Callable[[], dict]) -> dict:
        """Run an add or a delete: one at a time, questions waiting while the index is rebuilt."""
        if not app.state.reload_lock.acquire(timeout=ADMIN_WAIT_SECONDS):
            raise HTTPException(409, "another change to the documents is still running; try again")
        try:
            with core:
                result = work()
        finally:
            app.state.reload_lock.release()
        warm_suggestions()
        return result

    upload_body = {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": "An HTML page, a PDF, a plain-text or a Markdown file; the type is sniffed from the content."},
                    "id": {"type": "string", "description": "Document id (lower-case letters, digits, '-'); default: from the file name"},
                    "title": {"type": "string", "description": "Overrides the file's own title"},
                    "source": {"type": "string", "description": "Publisher; required when the file does not name it"},
                    "published": {"type": "string", "description": "Publication date, e.g. 2025-02-10"},
                    "url": {"type": "string", "description": "Canonical address of the article"},
                    "language": {"type": "string", "enum": ["fr", "en"]},
                    "replace": {"type": "string", "enum": ["true", "false"],
                                "description": "true: replace the document with the same id (a corrected version) instead of a 409"},
                }}}},
        }
    }
    admin_errors = {401: {"model": ErrorResponse, "description": "No bearer token"},
                    403: {"model": ErrorResponse, "description": "Wrong admin token"},
                    404: {"model": ErrorResponse, "description": "No admin token is configured (or no such document)"},
                    409: {"model": ErrorResponse, "description": "Duplicate, or another change is running"},
                    503: ERRORS[503]}

    @app.post(UPLOAD_PATH, status_code=201, response_model=DocumentAdded, tags=["documents"], openapi_extra=upload_body,
              responses={**admin_errors, 413: ERRORS[413],
                         415: {"model": ErrorResponse, "description": "Not an HTML page, PDF, text or Markdown file"},
                         422: {"model": ErrorResponse, "description": "Nothing to extract, missing metadata or a bad field"}})
    async def add_document(request: Request, response: FastAPIResponse,
                           authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Add one article (multipart field ``file``) and rebuild the index with it: when this
        returns, questions are answered from it. Only the new document is embedded. Any failure
        is a 4xx and leaves the documents and the index as they were. Needs the admin token."""
        require_admin(authorization)
        assistant = current_assistant(request)
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise HTTPException(415, "send the file as multipart/form-data in the field 'file'")
        from assistant.ingest import Input, Overrides, add_documents

        try:
            form = await request.form(max_files=1, max_fields=len(UPLOAD_FIELDS) + 1, max_part_size=64_000)
        except BodyTooLargeError as exc:
            raise HTTPException(413, str(exc)) from None
        except Exception as exc:  # starlette's MultiPartException and parser errors: the body is malformed
            raise HTTPException(400, f"the multipart body cannot be read: {exc}") from None
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise InvalidInputError("the multipart field 'file' is missing; send the article as a file in it")
            unknown = sorted(set(form.keys()) - {"file", *UPLOAD_FIELDS})
            if unknown:
                raise InvalidInputError(f"unknown form field(s) {', '.join(unknown)}; allowed: file, {', '.join(UPLOAD_FIELDS)}")
            values: dict[str, str | None] = {}
            for name in UPLOAD_FIELDS:
                value = form.get(name)
                if value is not None and not isinstance(value, str):
                    raise InvalidInputError(f"form field '{name}' must be text, not a file")
                values[name] = value.strip() if isinstance(value, str) and value.strip() else None
            try:
                raw = await upload.read()
            except BodyTooLargeError as exc:
                raise HTTPException(413, str(exc)) from None
            filename = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or None
        finally:
            await form.close()
        overrides = Overrides(doc_id=values["id"], title=values["title"], source=values["source"],
                              published=values["published"], url=values["url"], language=values["language"])
        if (values["replace"] or "false").lower() not in ("true", "false"):
            raise InvalidInputError("form field 'replace' must be true or false")
        replace = (values["replace"] or "").lower() == "true"
        result = await anyio.to_thread.run_sync(
            lambda: change_documents(lambda: add_documents(assistant, [Input(raw, filename, overrides)],
                                                           max_bytes=settings.max_upload_bytes, replace=replace)))
        added = result["added"][0]
        log.info("added document %s (%s) -> build %s", added["doc_id"], added["format"], assistant.index.build_id)
        response.headers["Location"] = f"/api/documents/{added['doc_id']}"
        return {**added, "build_id": assistant.index.build_id}

    @app.delete("/api/documents/{doc_id}", response_model=DocumentDeleted, tags=["documents"],
                responses={**admin_errors, 422: ERRORS[422]})
    def delete_document(doc_id: str, request: Request, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Remove an article and its original, and rebuild the index without it. Refused (409)
        for the last document. Needs the admin token."""
        require_admin(authorization)
        assistant = current_assistant(request)
        from assistant.ingest import check_id
        from assistant.ingest import delete_document as delete

        check_id(doc_id, "document id")
        result = change_documents(lambda: delete(assistant, doc_id))
        log.info("deleted document %s -> build %s", doc_id, assistant.index.build_id)
        return {"deleted": doc_id, "files": result["files"], "build_id": assistant.index.build_id,
                "documents": assistant.index.counts()["documents"]}

    @app.post("/api/feedback", status_code=201, response_model=FeedbackStored, tags=["answers"],
              responses={404: {"model": ErrorResponse, "description": "Feedback is turned off"}, 422: ERRORS[422],
                         503: {"model": ErrorResponse, "description": "The feedback file cannot take more"}})
    def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
        """Store a thumbs-up or thumbs-down on an answer (append-only JSONL on the server):
        question, history, answer, citations, the build that answered, verdict."""
        store = app.state.feedback
        if store is None:
            raise HTTPException(404, "feedback is turned off on this server (SUMMIT_FEEDBACK_FILE is empty)")
        assistant = getattr(request.app.state, "assistant", None)
        current = assistant.index.build_id if assistant is not None and assistant.index is not None else None
        record = store.append(body.model_dump(), build_id=current)
        return {"stored": True, "ts": record["ts"], "build_id": record["build_id"]}

    @app.get("/api/suggestions", response_model=SuggestionsResponse, tags=["answers"], responses={503: ERRORS[503]})
    def suggestions(assistant: AssistantDep) -> dict[str, Any]:
        """The configured suggested questions (SUMMIT_SUGGESTED_QUESTIONS) that the current index
        answers, with their language; checked once per index build."""
        return app.state.suggestions.for_index(assistant, core)

    # ---- OpenAI-compatible ----
    @app.get("/v1/models", response_model=ModelList, tags=["openai"])
    async def models() -> ModelList:
        """The single model this server offers."""
        return ModelList(data=[ModelCard(created=app.state.started)])

    @app.post("/v1/chat/completions", response_model=ChatCompletionResponse, tags=["openai"],
              responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream is true"},
                         422: ERRORS[422], 503: ERRORS[503]})
    def chat_completions(body: ChatCompletionRequest, assistant: AssistantDep) -> Any:
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

    # ---- the widget ----
    def static_route(path: str, filename: str, media_type: str) -> None:
        async def serve() -> FileResponse:
            return FileResponse(STATIC_DIR / filename, media_type=media_type,
                                headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache",
                                         "Referrer-Policy": "strict-origin-when-cross-origin"})

        serve.__doc__ = f"The chat widget: {filename}."
        app.add_api_route(path, serve, methods=["GET", "HEAD"], include_in_schema=False, response_class=FileResponse,
                          name=f"static:{filename}")

    for path, (filename, media_type) in STATIC_FILES.items():
        static_route(path, filename, media_type)

    return app
