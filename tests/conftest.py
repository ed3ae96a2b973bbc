"""Shared pytest fixtures, one block per area. Add yours in a block of your own."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The table cache (assistant/tablecache.py) of a test run is its own, not the user's ~/.cache;
# the CLI and server processes the tests start inherit it.
if "SUMMIT_CACHE_DIR" not in os.environ:
    import atexit
    import shutil

    os.environ["SUMMIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="summit-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SUMMIT_CACHE_DIR"], ignore_errors=True)


# ================================================================================================
# API, OpenAI-compatible endpoint and browser tests (issue #3).
# The real model on the real articles: the index is built once per session into a temp folder.
# ================================================================================================

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from assistant.service import Assistant  # noqa: E402
from assistant.settings import Settings  # noqa: E402


@pytest.fixture(scope="session")
def summit_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The bundled articles with a private index folder, so tests never touch ./index."""
    return Settings(documents_dir=REPO / "documents", index_dir=tmp_path_factory.mktemp("summit-index"))


@pytest.fixture(scope="session")
def summit_api_settings(tmp_path_factory: pytest.TempPathFactory) -> ApiSettings:
    """The server's settings of the test apps: feedback goes to a private file."""
    return ApiSettings(feedback_file=str(tmp_path_factory.mktemp("summit-feedback") / "feedback.jsonl"))


@pytest.fixture(scope="session")
def summit_assistant(summit_settings: Settings) -> Assistant:
    """The real assistant, loaded once (the first build takes ~10 s)."""
    return Assistant(summit_settings).load(rebuild="any")


@pytest.fixture
def make_client(summit_assistant: Assistant, summit_api_settings: ApiSettings) -> Iterator[Callable[..., TestClient]]:
    """A TestClient on a fresh app (fresh rate-limit state) with overrides of Settings and of
    ApiSettings (each field goes to the one that has it).

    Server exceptions are raised into the test, and teardown checks that the catch-all 500
    handler never ran: bad input must be refused with a 4xx, never reach it."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        api = {k: v for k, v in overrides.items() if k in ApiSettings.model_fields}
        library = {k: v for k, v in overrides.items() if k not in api}
        settings = summit_assistant.settings.model_copy(update=library)
        client = TestClient(create_app(settings, summit_assistant, summit_api_settings.model_copy(update=api)))
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
def live_server(summit_assistant: Assistant, summit_api_settings: ApiSettings) -> Iterator[LiveServer]:
    """uvicorn on a free 127.0.0.1 port in a background thread, sharing the loaded assistant."""
    import uvicorn

    app = create_app(summit_assistant.settings, summit_assistant, summit_api_settings)
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
# Adding documents, feedback and suggested questions (issue #11): a private copy of the articles
# and of a built index, so uploads and deletions never touch documents/ or the shared index.
# ================================================================================================

import shutil  # noqa: E402

ADMIN_TOKEN = "test-admin-token"


@pytest.fixture(scope="session")
def pristine_corpus(tmp_path_factory: pytest.TempPathFactory, summit_assistant: Assistant) -> Path:
    """documents/ and an index built from it with the real model, copied once per session."""
    root = tmp_path_factory.mktemp("pristine")
    shutil.copytree(REPO / "documents", root / "documents")
    settings = summit_assistant.settings.model_copy(update={"documents_dir": root / "documents", "index_dir": root / "index"})
    Assistant(settings, embedder=summit_assistant.embedder).build()
    return root


def _corpus_copy(pristine: Path, target: Path) -> tuple[Path, Path]:
    shutil.copytree(pristine / "documents", target / "documents")
    shutil.copytree(pristine / "index", target / "index", symlinks=True)
    return target / "documents", target / "index"


@pytest.fixture
def own_assistant(tmp_path: Path, pristine_corpus: Path, summit_assistant: Assistant) -> Assistant:
    """A loaded assistant over a fresh copy of the articles (the real model, shared)."""
    docs, index = _corpus_copy(pristine_corpus, tmp_path)
    settings = summit_assistant.settings.model_copy(update={"documents_dir": docs, "index_dir": index})
    return Assistant(settings, embedder=summit_assistant.embedder).load(rebuild="never")


@pytest.fixture
def own_api_settings(tmp_path: Path) -> ApiSettings:
    """The server's settings over ``own_assistant``: an admin token, a private feedback file."""
    return ApiSettings(admin_token=ADMIN_TOKEN, feedback_file=str(tmp_path / "feedback" / "feedback.jsonl"))


@pytest.fixture
def admin_client(own_assistant: Assistant, own_api_settings: ApiSettings) -> Iterator[TestClient]:
    """A TestClient on an app with an admin token, over ``own_assistant``; checks the 500 handler never ran."""
    with TestClient(create_app(own_assistant.settings, own_assistant, own_api_settings)) as client:
        yield client
        assert client.app.state.internal_errors == 0, "a request reached the catch-all 500 handler"  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def admin_server(tmp_path_factory: pytest.TempPathFactory, pristine_corpus: Path, summit_assistant: Assistant) -> Iterator[LiveServer]:
    """uvicorn with an admin token over a private copy of the articles (browser tests upload to it)."""
    import uvicorn

    root = tmp_path_factory.mktemp("admin-server")
    docs, index = _corpus_copy(pristine_corpus, root)
    settings = summit_assistant.settings.model_copy(update={"documents_dir": docs, "index_dir": index})
    api_settings = ApiSettings(
        admin_token=ADMIN_TOKEN, feedback_file=str(root / "feedback.jsonl"),
        suggested_questions=["Qui co-préside le sommet ?", "Quelle est la recette de la tartiflette ?",
                             "Où se réuniront les chefs d'État ?", "Who co-chairs the summit?", "What is the weather in Tokyo?"])
    assistant = Assistant(settings, embedder=summit_assistant.embedder).load(rebuild="never")
    app = create_app(settings, assistant, api_settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-admin", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a readiness wait, not an assertion on speed
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the admin test server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
    assert app.state.internal_errors == 0, "a request to the admin server reached the catch-all 500 handler"


# ================================================================================================
# Chromium for the browser tests (test_browser.py, test_browser_evidence.py): one Playwright
# instance per session, since its sync API allows only one at a time. Skips when Chromium is
# missing, except under CI=true where it fails.
# ================================================================================================

import os  # noqa: E402

CHROMIUM = os.environ.get("SUMMIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage"]


def _browser_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _browser_unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# ================================================================================================


# ================================================================================================
# The fast unit suite (`make test-unit`: every test not marked integration or browser) loads no
# real model: unit tests use tests/fakes.py and invented sentences. When the run leaves the
# integration tests out, the loaders of the bundled encoders and of spaCy refuse to run, so a
# unit test (or a fixture it uses) that reaches a real model fails and says so.
# ================================================================================================


def _unit_only(config: pytest.Config) -> bool:
    expr = (config.getoption("markexpr", "") or "").replace("(", " ").replace(")", " ").split()
    return "integration" in expr and expr[expr.index("integration") - 1 : expr.index("integration")] == ["not"]


def pytest_configure(config: pytest.Config) -> None:
    if not _unit_only(config):
        return
    from assistant import annotate, embedding

    def refuse(what: str):
        def loader(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"a unit test loaded {what}; use tests/fakes.py, or mark the test integration")

        return loader

    embedding.Embedder._load_engine = refuse("a bundled encoder")  # type: ignore[method-assign]
    embedding.Embedder._load_sentence_transformer = refuse("a SentenceTransformer")  # type: ignore[method-assign]
    annotate.pipeline = refuse("a spaCy pipeline")  # type: ignore[assignment]
