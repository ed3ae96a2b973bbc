"""The FastAPI application: JSON API, OpenAI-compatible endpoint and the chat widget.

One ``Assistant`` per process, loaded once in the lifespan (or injected by tests). Routes that
touch the model are plain ``def`` functions so FastAPI runs them in its thread pool and the event
loop stays free. ``create_app`` only wires: the routes are in ``api/routes/`` (one router per
resource), the middleware in ``api/middleware.py``, the error handlers in ``api/errors.py`` and
the shared state they reach in ``api/deps.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI

from assistant import __version__
from assistant.errors import SummitError
from assistant.feedback import FeedbackStore
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.suggestions import Suggestions

from .deps import warm_suggestions
from .errors import ERRORS, NotReadyError, StartupError, add_error_handlers  # noqa: F401 - StartupError, NotReadyError: api.app's names
from .middleware import BodyLimitMiddleware, SlidingWindow, add_middleware, content_security_policy  # noqa: F401
from .routes import answers, documents, openai, service
from .routes.widget import mount_offline_docs, widget_router
from .settings import ApiSettings

log = logging.getLogger("summit.api")

DESCRIPTION = (
    "Answers questions (French or English) about the Paris AI Action Summit with cited passages "
    "from French press articles, or says the sources do not hold the answer. Also speaks the "
    "OpenAI chat-completions protocol under /v1."
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the assistant unless one was given; a Milvus replica follows the published build."""
    settings, state = app.state.settings, app.state
    if settings.store == "milvus":
        # A replica of a shared index: never builds; loads the published build (retrying
        # while Milvus is unreachable or empty, /api/health says why) and follows new ones.
        from assistant.milvus_store import Follower

        if state.assistant is None:
            state.assistant = Assistant(settings)
        state.follower = Follower(state.assistant).start()
        try:
            yield
        finally:
            state.follower.stop()
        return
    if state.assistant is None:
        log.info("loading the model and the index from %s", settings.index_dir)
        try:
            state.assistant = await anyio.to_thread.run_sync(lambda: Assistant(settings).load(rebuild="any", background_model=True))
        except SummitError as exc:  # the message says what to fix; the library's stack would only hide it
            raise StartupError(f"cannot start: {exc}") from None
        log.info("ready: build %s", state.assistant.index.build_id)
        await anyio.to_thread.run_sync(lambda: warm_suggestions(state))
    yield


def create_app(settings: Settings | None = None, assistant: Assistant | None = None,
               api_settings: ApiSettings | None = None) -> FastAPI:
    """Build the app. With ``assistant`` (already loaded) nothing is loaded at startup; otherwise
    the lifespan loads the model and the index once, building the index if it is missing, stale
    or damaged (the reason is logged). ``api_settings``: default from the environment."""
    settings = settings or (assistant.settings if assistant is not None else Settings())
    api_settings = api_settings or ApiSettings()
    app = FastAPI(
        title="Summit Assistant", version=__version__, description=DESCRIPTION, lifespan=lifespan,
        responses={k: v for k, v in ERRORS.items() if k in (400, 413, 429)},
        docs_url=None,  # served below from the swagger-ui-bundle package: no CDN, works offline
        redoc_url=None,
        # No 307 from "/api/ask/" to "/api/ask": an empty, non-JSON reply whose Location echoes the
        # client's Host header. Exact paths only; a trailing slash gets the JSON 404.
        redirect_slashes=False,
    )
    mount_offline_docs(app)
    state = app.state
    state.assistant, state.settings, state.api_settings = assistant, settings, api_settings
    state.started = int(time.time())
    state.internal_errors = 0  # tests check that no bad input ever gets here
    state.reload_lock = threading.Lock()
    state.suggestions = Suggestions(api_settings.suggested_questions)
    state.feedback = FeedbackStore(Path(api_settings.feedback_file)) if api_settings.feedback_file.strip() else None
    # One request at a time inside the library: its stemmers (text.py) and caches (cache.py) are
    # locked, but the per-sentence tables it fills lazily are not, and its thread pools are pinned
    # to `threads` cores, so parallel calls would only compete for them. Builds and reloads hold it.
    state.core = threading.Lock()
    add_middleware(app, settings, api_settings)
    add_error_handlers(app)
    for router in (service.router, answers.router, documents.router, openai.router):
        app.include_router(router)
    app.include_router(widget_router(content_security_policy(api_settings)))
    return app
