"""HTTP API: every route, every validation error, limits, CORS, headers and admin reload.

Runs the real model on the real articles (see conftest). Bad input must always get a 4xx JSON
body naming the problem; the client fixture fails a test whose request hit the 500 handler."""

from __future__ import annotations

import asyncio
import os
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from api.app import BodyLimitMiddleware, SlidingWindow, StartupError, create_app
from assistant.answering import NOT_FOUND
from assistant.service import Assistant
from assistant.settings import Settings
from api.settings import ApiSettings
from benchmarks import bench

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration

CO_CHAIR_EN = "Who co-chairs the summit?"
CO_CHAIR_FR = "Qui co-préside le sommet ?"
CO_CHAIR_PASSAGE = "Narendra Modi co-présidera"
OFF_TOPIC = "Quelle est la recette de la tartiflette ?"
ANSWER_KEYS = {"question", "language", "found", "answer", "citations", "took_ms"}
CITATION_KEYS = {"n", "chunk_id", "doc_id", "title", "source", "url", "published", "passage", "start", "end", "highlights", "score"}


def assert_json_error(response: Any, status: int, *fragments: str) -> str:
    """A 4xx with a JSON body whose ``detail`` is a sentence mentioning each fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for fragment in fragments:
        assert fragment in detail, detail
    return detail


# ---- health and readiness ----------------------------------------------------------------------


def test_health(client: TestClient, summit_assistant: Assistant) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["documents"] == len(list((REPO / "documents").glob("*.md")))
    assert body["chunks"] == len(summit_assistant.index.chunks) > 0
    assert body["model"].startswith("use-multilingual")
    assert body["build_id"] == summit_assistant.index.build_id


def test_not_loaded_is_503_json(summit_settings: Settings, summit_api_settings: ApiSettings) -> None:
    # No `with`: the lifespan does not run, so nothing is loaded.
    client = TestClient(create_app(summit_settings, api_settings=summit_api_settings))
    for method, path, body in [("GET", "/api/health", None), ("POST", "/api/ask", {"question": "Où ?"}),
                               ("GET", "/api/documents", None), ("POST", "/v1/chat/completions",
                                                                 {"messages": [{"role": "user", "content": "Où ?"}]})]:
        r = client.request(method, path, json=body)
        assert_json_error(r, 503, "loading")
        assert r.headers["retry-after"] == "5"


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch, summit_assistant: Assistant) -> None:
    """Let the lifespan build its own Assistant, but on the already-loaded model (7 s saved)."""
    monkeypatch.setattr("api.app.Assistant", lambda settings: Assistant(settings, embedder=summit_assistant.embedder))


@pytest.mark.usefixtures("shared_model")
def test_lifespan_loads_the_assistant(summit_settings: Settings, summit_assistant: Assistant, summit_api_settings: ApiSettings) -> None:
    app = create_app(summit_settings, api_settings=summit_api_settings)
    assert app.state.assistant is None
    with TestClient(app) as client:
        assert client.get("/api/health").json()["build_id"] == summit_assistant.index.build_id
        assert client.post("/api/ask", json={"question": CO_CHAIR_FR}).json()["found"] is True


@pytest.mark.usefixtures("shared_model")
def test_lifespan_fails_fast_on_bad_documents(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "bad.md").write_text("---\ntitle: Sans source\n---\nDu texte.\n", encoding="utf-8")
    app = create_app(Settings(documents_dir=docs, index_dir=tmp_path / "index"))
    with pytest.raises(StartupError, match=r"cannot start: .*bad\.md: .*source"):
        with TestClient(app):
            pass


# ---- /api/ask: answers -------------------------------------------------------------------------


def test_ask_co_chair_english(client: TestClient) -> None:
    """Product requirement: the English question finds the French sentence."""
    body = client.post("/api/ask", json={"question": CO_CHAIR_EN}).json()
    assert body["found"] is True, body["answer"]
    assert CO_CHAIR_PASSAGE in body["citations"][0]["passage"]


def test_ask_co_chair_french(client: TestClient) -> None:
    r = client.post("/api/ask", json={"question": CO_CHAIR_FR})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == ANSWER_KEYS
    assert body["found"] is True and body["language"] == "fr"
    assert "Narendra Modi" in body["answer"]
    assert body["citations"] and all(set(c) == CITATION_KEYS for c in body["citations"])
    first = body["citations"][0]
    assert first["n"] == 1 and CO_CHAIR_PASSAGE in first["passage"]
    assert [c["n"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))
    assert len(body["citations"]) <= 5
    assert body["took_ms"] > 0
    timing = bench.server_timing(r.headers["server-timing"])  # how long it waited and answered
    assert set(timing) == {"wait", "answer"} and timing["answer"] > 0 and timing["wait"] >= 0


def test_ask_off_topic_is_not_found(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": OFF_TOPIC}).json()
    assert set(body) == ANSWER_KEYS
    assert body["found"] is False
    assert body["citations"] == []
    assert body["answer"] == NOT_FOUND["fr"]


def test_ask_offsets_point_into_document_text(client: TestClient) -> None:
    """What the widget relies on: passage == text[start:end], highlights inside the passage."""
    body = client.post("/api/ask", json={"question": CO_CHAIR_FR, "k": 3}).json()
    for c in body["citations"]:
        text = client.get(f"/api/documents/{c['doc_id']}").json()["text"]
        assert text[c["start"] : c["end"]] == c["passage"]
        for a, b in c["highlights"]:
            assert c["start"] <= a < b <= c["end"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_ask_modes_and_k(client: TestClient, mode: str) -> None:
    body = client.post("/api/ask", json={"question": CO_CHAIR_FR, "k": 1, "mode": mode}).json()
    assert len(body["citations"]) <= 1


def test_ask_with_history(client: TestClient) -> None:
    r = client.post("/api/ask", json={"question": "Et qui le co-préside ?", "history": ["Où se tient le sommet ?"]})
    assert r.status_code == 200 and set(r.json()) == ANSWER_KEYS


def test_ask_accepts_limits_exactly(client: TestClient) -> None:
    question = "  " + "é" * 1000 + "\n"  # 1000 characters once trimmed
    r = client.post("/api/ask", json={"question": question, "history": ["a" * 1000] * 20, "k": 20})
    assert r.status_code == 200
    assert r.json()["question"] == "é" * 1000


# ---- /api/ask: validation ----------------------------------------------------------------------

BAD_ASKS: list[tuple[str, Any, str]] = [
    ("empty", {"question": ""}, "question is empty"),
    ("whitespace", {"question": "  \n\t "}, "question is empty"),
    ("too long", {"question": "x" * 1001}, "1001 characters"),
    ("number", {"question": 123}, "question: Input should be a valid string"),
    ("null", {"question": None}, "question: Input should be a valid string"),
    ("list", {"question": ["Qui ?"]}, "question: Input should be a valid string"),
    ("missing", {}, "question: Field required"),
    ("history not a list", {"question": "Qui ?", "history": "Où ?"}, "history"),
    ("history too long", {"question": "Qui ?", "history": ["Où ?"] * 21}, "history"),
    ("history item too long", {"question": "Qui ?", "history": ["Où ?", "x" * 1001]}, "history item 1 is 1001 characters"),
    ("history item not a string", {"question": "Qui ?", "history": [1]}, "history.0"),
    ("k zero", {"question": "Qui ?", "k": 0}, "k: Input should be greater than or equal to 1"),
    ("k 21", {"question": "Qui ?", "k": 21}, "k: Input should be less than or equal to 20"),
    ("k string", {"question": "Qui ?", "k": "x"}, "k: Input should be a valid integer"),
    ("k float", {"question": "Qui ?", "k": 2.5}, "k: Input should be a valid integer"),
    ("k bool", {"question": "Qui ?", "k": True}, "k: Input should be a valid integer"),
    ("bad mode", {"question": "Qui ?", "mode": "semantic"}, "mode: Input should be 'hybrid', 'dense' or 'lexical'"),
    ("unknown field", {"question": "Qui ?", "questoin": "typo"}, "questoin: Extra inputs are not permitted"),
    ("array body", [{"question": "Qui ?"}], "must be a JSON object"),
    ("string body", "Qui ?", "must be a JSON object"),
]


@pytest.mark.parametrize(("body", "fragment"), [(b, f) for _, b, f in BAD_ASKS], ids=[i for i, _, _ in BAD_ASKS])
def test_ask_rejects_bad_input(client: TestClient, body: Any, fragment: str) -> None:
    assert_json_error(client.post("/api/ask", json=body), 422, fragment)


JSON = "application/json"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b'{"question": "Qui', JSON, 422, "not valid JSON"),
        (b"{'question': 'Qui ?'}", JSON, 422, "not valid JSON"),
        (b"\xff\xfe", JSON, 422, "not valid JSON"),
        (b"", JSON, 422, "body is missing"),
        (b"question=Qui", "application/x-www-form-urlencoded", 422, "must be a JSON object"),
        (b'{"question": "Qui ?"}', "text/plain", 422, "must be a JSON object"),
        (b'{"question": "Qui \\ud800 ?"}', JSON, 422, "question contains an unpaired UTF-16 surrogate"),
        (b'{"question": "Qui ?", "history": ["\\udc00"]}', JSON, 422, "history item 0 contains an unpaired"),
        (b"[" * 5000 + b"]" * 5000, JSON, 400, "error parsing the body"),  # deeper than the JSON parser goes
    ],
    ids=["truncated", "single quotes", "not utf-8", "empty", "form", "text/plain", "lone surrogate", "surrogate in history",
         "deep nesting"],
)
def test_ask_rejects_unparsable_bodies(client: TestClient, content: bytes, content_type: str, status: int, fragment: str) -> None:
    r = client.post("/api/ask", content=content, headers={"Content-Type": content_type})
    assert_json_error(r, status, fragment)


def test_oversized_body_is_413(client: TestClient) -> None:
    api_settings = client.app.state.api_settings  # type: ignore[attr-defined]
    big = {"question": "Qui ?", "history": ["x" * 900] * 80}
    assert len(json.dumps(big)) > api_settings.max_body_bytes
    assert_json_error(client.post("/api/ask", json=big), 413, f"limit of {api_settings.max_body_bytes} bytes")


def test_oversized_chunked_body_is_413(client: TestClient) -> None:
    """No Content-Length: the bytes are counted as they arrive."""

    def chunks() -> Iterator[bytes]:
        yield b'{"question": "Qui ?", "history": ['
        for _ in range(100):
            yield b'"' + b"x" * 999 + b'",'
        yield b'"x"]}'

    r = client.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_json_error(r, 413, "larger than the limit")


def test_body_limit_counts_streamed_chunks() -> None:
    """The middleware alone, fed many small chunks: it must stop once the total passes the limit."""
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    pieces = iter([{"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(10)])

    async def receive() -> dict[str, Any]:
        message = next(pieces)
        received.append(message)
        return message

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not be called")

    scope = {"type": "http", "method": "POST", "path": "/api/ask", "headers": [], "query_string": b""}
    asyncio.run(BodyLimitMiddleware(app, max_bytes=2048)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert len(received) == 4  # 4 x 600 > 2048: stopped reading there
    assert json.loads(sent[1]["body"])["detail"].startswith("the request body is larger")


def test_bad_content_length_is_400(client: TestClient) -> None:
    r = client.post("/api/ask", content=b'{"question": "Qui ?"}', headers={"Content-Type": "application/json", "Content-Length": "abc"})
    assert_json_error(r, 400, "Content-Length")


@given(body=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["question", "history", "k", "mode", "x"]), inner, max_size=4),
    max_leaves=12,
))
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_ask_never_500(client: TestClient, body: Any) -> None:
    """Any JSON at all gets a 200 or a 4xx with a JSON detail, never a 500."""
    r = client.post("/api/ask", json=body)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert isinstance(r.json()["detail"], str)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_openapi_fuzz_never_500(summit_assistant: Assistant, summit_api_settings: ApiSettings, mode: str) -> None:
    """Schemathesis generates requests from our own OpenAPI document (valid ones, then invalid
    ones) for every operation: no 5xx, and every response matches its documented status, media
    type and schema."""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

    app = create_app(summit_assistant.settings, summit_assistant, summit_api_settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    # Only these take input that can be schema-invalid (a path id is any string, the token any header).
    with_inputs = {"POST /api/ask", "GET /api/search", "POST /v1/chat/completions", "POST /api/feedback"}
    for operation in operations:
        if mode == "negative" and operation.label not in with_inputs:
            continue

        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @hsettings(max_examples=int(os.environ.get("SUMMIT_FUZZ_EXAMPLES", "25")), deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            case.call_and_validate(checks=checks)

        run()
    assert app.state.internal_errors == 0


# ---- /api/search -------------------------------------------------------------------------------


def test_search(client: TestClient) -> None:
    r = client.get("/api/search", params={"q": "Narendra Modi co-présidence", "k": 3, "mode": "lexical"})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == "Narendra Modi co-présidence"
    assert 1 <= len(body["results"]) <= 3
    assert all(set(c) == CITATION_KEYS for c in body["results"])
    assert CO_CHAIR_PASSAGE in body["results"][0]["passage"]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "q: Field required"),
        ({"q": ""}, "q is empty"),
        ({"q": "   "}, "q is empty"),
        ({"q": "x" * 1001}, "1001 characters"),
        ({"q": "Modi", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"q": "Modi", "k": 21}, "k: Input should be less than or equal to 20"),
        ({"q": "Modi", "k": "x"}, "k: Input should be a valid integer"),
        ({"q": "Modi", "mode": "fuzzy"}, "mode: Input should be"),
    ],
    ids=["missing", "empty", "blank", "too long", "k0", "k21", "kx", "bad mode"],
)
def test_search_rejects_bad_input(client: TestClient, params: dict[str, Any], fragment: str) -> None:
    assert_json_error(client.get("/api/search", params=params), 422, fragment)


# ---- documents ---------------------------------------------------------------------------------


def test_documents(client: TestClient) -> None:
    docs = client.get("/api/documents").json()
    assert {d["doc_id"] for d in docs} == {"macron-invite-musk-trump", "rtl-une-semaine-pour-l-ia"}
    for d in docs:
        assert {"doc_id", "title", "source", "url", "published", "language"} <= set(d)
        assert "text" not in d


def test_document_text(client: TestClient) -> None:
    r = client.get("/api/documents/rtl-une-semaine-pour-l-ia")
    assert r.status_code == 200
    doc = r.json()
    assert doc["source"] == "RTL" and CO_CHAIR_PASSAGE in doc["text"]
    assert "Bienvenue sur RTL" not in doc["text"]  # cleaned text, boilerplate removed


@pytest.mark.parametrize("doc_id", ["nope", "..%2F..%2Fetc%2Fpasswd", "rtl-une-semaine-pour-l-ia.md", "%00"])
def test_unknown_document_is_404(client: TestClient, doc_id: str) -> None:
    assert_json_error(client.get(f"/api/documents/{doc_id}"), 404)


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_json_error(client.get("/api/nothing-here"), 404, "Not Found")
    assert_json_error(client.get("/api/ask"), 405, "Method Not Allowed")


# ---- CORS and headers --------------------------------------------------------------------------

ALLOWED = "https://partner.example"
EVIL = "https://evil.example"


def test_cors_same_origin_only_by_default(client: TestClient) -> None:
    r = client.get("/api/health", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in r.headers
    pre = client.options("/api/ask", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
    assert_json_error(pre, 400, "Disallowed CORS origin", "same origin only")


def test_cors_allows_configured_origin(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=[ALLOWED])
    r = client.post("/api/ask", json={"question": CO_CHAIR_FR}, headers={"Origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
    pre = client.options("/api/ask", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in pre.headers["access-control-allow-methods"]
    # errors made by middleware carry CORS headers too, so a cross-origin widget can read them
    err = client.post("/api/ask", json={"question": ""}, headers={"Origin": ALLOWED})
    assert err.status_code == 422 and err.headers["access-control-allow-origin"] == ALLOWED


def test_cors_denies_other_origins(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=[ALLOWED])
    r = client.post("/api/ask", json={"question": CO_CHAIR_FR}, headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in r.headers
    pre = client.options("/api/ask", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    detail = assert_json_error(pre, 400, "Disallowed CORS origin", "SUMMIT_CORS_ORIGINS")
    assert ALLOWED not in detail  # do not tell strangers who is allowed


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [("/", "text/html; charset=utf-8", b'data-summit-open'),
     ("/widget.js", "text/javascript; charset=utf-8", b"SummitWidget"),
     ("/widget.css", "text/css; charset=utf-8", b".summit-root"),
     ("/demo.css", "text/css; charset=utf-8", b".summit-demo")],
)
def test_static_files_and_security_headers(make_client: Callable[..., TestClient], path: str, content_type: str, marker: bytes) -> None:
    client = make_client(cors_origins=[ALLOWED])
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert marker in r.content
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")}
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'", ALLOWED]
    assert csp["default-src"] == ["'none'"]
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert "unsafe-eval" not in r.headers["content-security-policy"]
    assert client.head(path).status_code == 200


def test_widget_files_are_small() -> None:
    # 30 kB until issue #11 added the quoted evidence, copy, feedback and server-side suggestions (~9 kB).
    static = REPO / "api" / "static"
    assert (static / "widget.js").stat().st_size + (static / "widget.css").stat().st_size < 40_000


def test_json_responses_are_nosniff(client: TestClient) -> None:
    for r in (client.get("/api/health"), client.post("/api/ask", json={}), client.get("/nope")):
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["x-content-type-options"] == "nosniff"


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/api/health", "/api/ask", "/api/search", "/api/documents", "/api/documents/{doc_id}",
            "/api/admin/reload", "/v1/models", "/v1/chat/completions", "/api/feedback", "/api/suggestions"} <= set(spec["paths"])
    assert set(spec["paths"]["/api/documents"]) == {"get", "post"} and "delete" in spec["paths"]["/api/documents/{doc_id}"]
    upload = spec["paths"]["/api/documents"]["post"]
    assert "file" in upload["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]
    assert {"401", "403", "409", "413", "415", "422"} <= set(upload["responses"])
    ask = spec["paths"]["/api/ask"]["post"]
    assert ask["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AnswerResponse")
    assert "examples" in spec["components"]["schemas"]["AskRequest"]
    assert client.get("/docs").status_code == 200


# ---- rate limit --------------------------------------------------------------------------------


def test_rate_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(rate_limit_per_minute=3)
    for _ in range(3):
        assert client.get("/api/search", params={"q": "Modi"}).status_code == 200
    r = client.post("/api/ask", json={"question": CO_CHAIR_FR})
    detail = assert_json_error(r, 429, "3 per minute")
    assert 1 <= int(r.headers["retry-after"]) <= 60 and r.headers["retry-after"] in detail
    assert client.get("/api/health").status_code == 200  # probes are exempt
    assert client.get("/widget.js").status_code == 200  # so is the widget itself
    v1 = client.get("/v1/models")
    assert v1.status_code == 429 and v1.json()["error"]["code"] == 429


def test_rate_limit_off_by_default(client: TestClient) -> None:
    assert all(client.get("/api/search", params={"q": "Modi", "k": 1}).status_code == 200 for _ in range(30))


def test_sliding_window() -> None:
    now = [1000.0]
    window = SlidingWindow(2, window=60, clock=lambda: now[0])
    assert window.hit("a") == 0
    now[0] += 10
    assert window.hit("a") == 0
    assert window.hit("b") == 0  # per client
    now[0] += 5
    assert window.hit("a") == 45  # the first hit leaves the window at t=1060
    now[0] = 1060.0
    assert window.hit("a") == 0
    assert window.hit("a") == 10


# ---- admin reload ------------------------------------------------------------------------------


def test_reload_absent_without_token(client: TestClient) -> None:
    assert_json_error(client.post("/api/admin/reload", headers={"Authorization": "Bearer x"}), 404)


def test_reload_auth(make_client: Callable[..., TestClient], summit_assistant: Assistant) -> None:
    client = make_client(admin_token="s3cret-token")
    r = client.post("/api/admin/reload")
    assert_json_error(r, 401, "bearer")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_json_error(client.post("/api/admin/reload", headers={"Authorization": "Basic s3cret-token"}), 401)
    assert_json_error(client.post("/api/admin/reload", headers={"Authorization": "Bearer   "}), 401)
    assert_json_error(client.post("/api/admin/reload", headers={"Authorization": "Bearer wrong"}), 403, "wrong admin token")
    r = client.post("/api/admin/reload", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200
    assert r.json() == {"build_id": summit_assistant.index.build_id, "built": False,
                        "reason": "documents unchanged; reloaded the current build"}


def test_reload_rebuilds_changed_documents(tmp_path: Path, summit_assistant: Assistant) -> None:
    """Edit an article, reload: a new build answers from the new text."""
    docs = tmp_path / "documents"
    shutil.copytree(REPO / "documents", docs)
    settings = Settings(documents_dir=docs, index_dir=tmp_path / "index")
    assistant = Assistant(settings, embedder=summit_assistant.embedder).load()
    old = assistant.index.build_id
    with TestClient(create_app(settings, assistant, ApiSettings(admin_token="tok"))) as client:
        path = docs / "rtl-une-semaine-pour-l-ia.md"
        path.write_text(path.read_text(encoding="utf-8") + "\nLa mascotte officielle du sommet est un hérisson nommé Pixel.\n",
                        encoding="utf-8")
        r = client.post("/api/admin/reload", headers={"Authorization": "Bearer tok"})
        assert r.status_code == 200
        body = r.json()
        assert body["built"] is True and body["build_id"] != old
        assert client.get("/api/health").json()["build_id"] == body["build_id"]
        doc = client.get("/api/documents/rtl-une-semaine-pour-l-ia").json()
        assert "hérisson nommé Pixel" in doc["text"]

        # a broken article: 409 naming it, and the previous index keeps answering
        (docs / "broken.md").write_text("---\ntitle: Sans source\n---\nDu texte.\n", encoding="utf-8")
        r = client.post("/api/admin/reload", headers={"Authorization": "Bearer tok"})
        assert_json_error(r, 409, "broken.md", "source")
        assert client.get("/api/health").json()["build_id"] == body["build_id"]
        assert client.post("/api/ask", json={"question": "Qui co-préside le sommet ?"}).status_code == 200
        assert client.app.state.internal_errors == 0  # type: ignore[attr-defined]


# ---- the last-resort handler -------------------------------------------------------------------


class ExplodingAssistant(Assistant):
    """A loaded assistant whose ask() fails the way a bug would."""

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")


def test_unexpected_error_is_json_500_without_trace(summit_assistant: Assistant, summit_api_settings: ApiSettings) -> None:
    boom = ExplodingAssistant(summit_assistant.settings, embedder=summit_assistant.embedder)
    boom.index, boom.retriever, boom.answerer = summit_assistant.index, summit_assistant.retriever, summit_assistant.answerer
    app = create_app(summit_assistant.settings, boom, summit_api_settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/api/ask", json={"question": CO_CHAIR_FR})
        assert r.status_code == 500
        assert r.json() == {"detail": "internal error; it has been logged"}
        assert "secret" not in r.text and "Traceback" not in r.text
        assert r.headers["x-content-type-options"] == "nosniff"
        assert app.state.internal_errors == 1


def test_k_and_mode_default_to_the_servers_settings(summit_settings: Settings, summit_assistant: Assistant,
                                                    summit_api_settings: ApiSettings) -> None:
    """SUMMIT_TOP_K / SUMMIT_MODE are the API's defaults when a request omits k or mode."""
    settings = summit_settings.model_copy(update={"top_k": 2, "mode": "lexical"})
    assistant = Assistant(settings, embedder=summit_assistant.embedder, warm_up=False).load(rebuild="never")
    with TestClient(create_app(settings, assistant, summit_api_settings)) as client:
        answer = client.post("/api/ask", json={"question": CO_CHAIR_FR}).json()
        assert answer["found"] and len(answer["citations"]) == 2
        assert len(client.post("/api/ask", json={"question": CO_CHAIR_FR, "k": 4}).json()["citations"]) == 4
        results = client.get("/api/search", params={"q": "co-présidence du sommet"}).json()["results"]
        assert len(results) == 2
        lexical = assistant.search("co-présidence du sommet", k=2, mode="lexical")
        assert [r["chunk_id"] for r in results] == [c.chunk_id for c in lexical]
