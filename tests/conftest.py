"""Shared pytest fixtures, one block per area. Add yours in a block of your own."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# ================================================================================================
# API, OpenAI-compatible endpoint and browser tests (issue #3).
# The real model on the real articles: the index is built once per session into a temp folder.
# ================================================================================================

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from assistant.service import Assistant  # noqa: E402
from assistant.settings import Settings  # noqa: E402


@pytest.fixture(scope="session")
def summit_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The bundled articles with a private index folder, so tests never touch ./index."""
    return Settings(documents_dir=REPO / "documents", index_dir=tmp_path_factory.mktemp("summit-index"))


@pytest.fixture(scope="session")
def summit_assistant(summit_settings: Settings) -> Assistant:
    """The real assistant, loaded once (the first build takes ~10 s)."""
    return Assistant(summit_settings).load(rebuild="any")


@pytest.fixture
def make_client(summit_assistant: Assistant) -> Iterator[Callable[..., TestClient]]:
    """A TestClient on a fresh app (fresh rate-limit state) with Settings overrides.

    Server exceptions are raised into the test, and teardown checks that the catch-all 500
    handler never ran: bad input must be refused with a 4xx, never reach it."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        settings = summit_assistant.settings.model_copy(update=overrides)
        client = TestClient(create_app(settings, summit_assistant))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
        assert client.app.state.internal_errors == 0, "a request reached the catch-all 500 handler"  # type: ignore[attr-defined]


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@dataclass
class LiveServer:
    url: str
    app: FastAPI


@pytest.fixture(scope="session")
def live_server(summit_assistant: Assistant) -> Iterator[LiveServer]:
    """uvicorn on a free 127.0.0.1 port in a background thread, sharing the loaded assistant."""
    import uvicorn

    app = create_app(summit_assistant.settings, summit_assistant)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a readiness wait, not an assertion on speed
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
    assert app.state.internal_errors == 0, "a request to the live server reached the catch-all 500 handler"


# ================================================================================================
