"""The middleware: plain ASGI (cheap, and they also cover responses made by other middleware)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.settings import Settings

from .errors import error_response
from .settings import ApiSettings

RATE_LIMITED_PREFIXES = ("/api/", "/v1/")
RATE_LIMIT_EXEMPT = frozenset({"/api/health"})
UPLOAD_PATH = "/api/documents"  # POST: multipart upload, limited by max_upload_bytes instead of max_body_bytes


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



def add_middleware(app: FastAPI, settings: Settings, api_settings: ApiSettings) -> None:
    """Added innermost first: headers wrap CORS wraps the rate limit wraps the body limit.
    An upload may be as large as max_upload_bytes plus the multipart framing around the file."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=api_settings.max_body_bytes,
                       streamed={("POST", UPLOAD_PATH): settings.max_upload_bytes + 64_000})
    if api_settings.rate_limit_per_minute > 0:
        app.add_middleware(RateLimitMiddleware, limiter=SlidingWindow(api_settings.rate_limit_per_minute))
    app.add_middleware(
        JSONCORSMiddleware,
        allow_origins=api_settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "Accept"],
        expose_headers=["Retry-After", "X-Summit-Build", "Server-Timing"],
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware)
