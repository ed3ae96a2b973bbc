"""The OpenAI-compatible endpoint, driven by the official ``openai`` package against a live
uvicorn server, plus the raw SSE framing and the limits over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from assistant.answering import NOT_FOUND

if TYPE_CHECKING:  # fixtures come from conftest; import the type only
    from tests.conftest import LiveServer

pytestmark = pytest.mark.integration

CO_CHAIR_FR = "Qui co-préside le sommet ?"


@pytest.fixture(scope="module")
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="not-needed", max_retries=0, timeout=60)


def test_models(oai: openai.OpenAI) -> None:
    models = list(oai.models.list())
    assert [m.id for m in models] == ["summit-assistant"]
    assert models[0].object == "model"


def test_chat_completion(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(
        model="summit-assistant",
        messages=[{"role": "system", "content": "Tu es un assistant."}, {"role": "user", "content": CO_CHAIR_FR}],
    )
    assert resp.object == "chat.completion" and resp.model == "summit-assistant" and resp.id.startswith("chatcmpl-")
    choice = resp.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content or ""
    answer, _, sources = content.partition("\n\nSources:\n")
    assert "Narendra Modi" in answer and answer.endswith(" [1]")
    extra = resp.model_extra or {}
    citations = extra["citations"]
    assert extra["found"] is True
    assert "Narendra Modi co-présidera" in citations[0]["passage"]
    assert sources.splitlines() == [f"[{c['n']}] {c['title']} — {c['source']}" for c in citations]


def test_chat_streaming_matches_non_streaming(oai: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": CO_CHAIR_FR}]
    full = oai.chat.completions.create(model="summit-assistant", messages=messages)
    chunks = list(oai.chat.completions.create(model="summit-assistant", messages=messages, stream=True))
    assert len(chunks) >= 3
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == full.choices[0].message.content
    assert (chunks[-1].model_extra or {})["citations"] == (full.model_extra or {})["citations"]


def test_chat_history_and_content_parts(oai: openai.OpenAI) -> None:
    """Earlier user messages are the history; text parts are joined; assistant turns are ignored."""
    resp = oai.chat.completions.create(
        model="anything",
        messages=[
            {"role": "user", "content": "Où se tient le sommet ?"},
            {"role": "assistant", "content": "Au Grand Palais [1]"},
            {"role": "user", "content": [{"type": "text", "text": "Et qui le co-préside ?"}]},
        ],
    )
    assert resp.model == "summit-assistant"
    assert resp.choices[0].message.content


def test_chat_not_found(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(model="summit-assistant",
                                       messages=[{"role": "user", "content": "Quelle est la recette de la tartiflette ?"}])
    assert resp.choices[0].message.content == NOT_FOUND["fr"]
    assert (resp.model_extra or {})["citations"] == [] and (resp.model_extra or {})["found"] is False


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "messages: List should have at least 1 item"),
        ([{"role": "system", "content": "Hello"}], "no user message"),
        ([{"role": "user", "content": "   "}], "question is empty"),
        ([{"role": "user", "content": "x" * 1001}], "1001 characters"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}], "only text content"),
        ([{"role": "user", "content": [{"type": "text"}]}], "a text part has no 'text'"),
        ([{"role": "wizard", "content": "Qui ?"}], "messages.0.role"),
    ],
    ids=["no messages", "no user", "blank", "too long", "image", "empty part", "bad role"],
)
def test_chat_errors_reach_the_client(oai: openai.OpenAI, messages: list, fragment: str) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as info:
        oai.chat.completions.create(model="summit-assistant", messages=messages)
    assert info.value.status_code == 422
    assert fragment in info.value.message
    assert isinstance(info.value.body, dict) and fragment in info.value.body["message"]


# ---- raw protocol over a real socket -----------------------------------------------------------


def test_sse_framing(live_server: LiveServer) -> None:
    body = {"model": "summit-assistant", "stream": True, "messages": [{"role": "user", "content": CO_CHAIR_FR}]}
    with httpx.stream("POST", f"{live_server.url}/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert payloads[-1]["citations"][0]["n"] == 1


def test_streamed_upload_over_limit_is_413(live_server: LiveServer) -> None:
    """A chunked upload (no Content-Length) is cut off once it passes max_body_bytes."""

    def chunks() -> Iterator[bytes]:
        yield b'{"messages": ['
        for _ in range(200):
            yield b'{"role": "user", "content": "' + b"x" * 900 + b'"},'
        yield b'{"role": "user", "content": "Qui ?"}]}'

    r = httpx.post(f"{live_server.url}/v1/chat/completions", content=chunks(),
                   headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 413
    assert "larger than the limit" in r.json()["error"]["message"]


def test_lone_surrogate_is_refused(live_server: LiveServer) -> None:
    body = b'{"messages": [{"role": "user", "content": "Qui \\ud800 ?"}]}'
    r = httpx.post(f"{live_server.url}/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "unpaired UTF-16 surrogate" in r.json()["detail"]


def test_invalid_json_over_socket(live_server: LiveServer) -> None:
    r = httpx.post(f"{live_server.url}/v1/chat/completions", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]


def test_concurrent_requests_agree_with_sequential_ones(live_server: LiveServer) -> None:
    """Routes run in a thread pool: parallel questions must get the same answers as one by one."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [CO_CHAIR_FR, "Quelle est la recette de la tartiflette ?", "Où se tient le sommet ?",
                 "Combien de chefs d'État sont attendus ?"] * 16

    def ask(q: str) -> tuple[int, str, list[str]]:
        r = httpx.post(f"{live_server.url}/api/ask", json={"question": q}, timeout=120)
        body = r.json()
        return r.status_code, body["answer"], [c["chunk_id"] for c in body["citations"]]

    sequential = {q: ask(q) for q in set(questions)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(ask, questions))
    assert parallel == [sequential[q] for q in questions]
