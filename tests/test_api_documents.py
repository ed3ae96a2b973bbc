"""POST/DELETE /api/documents, POST /api/feedback and GET /api/suggestions (issue #11), with the real
model on the real articles plus the fixture pages, on a private copy of the corpus (conftest).

Also the end-to-end boilerplate proof: once the three fixture layouts are added, questions that
only their chrome answers are abstained on and nothing cited holds chrome, while the same
questions are answered when the pages' whole visible text is indexed instead (the control)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.service import Assistant

from api.settings import ApiSettings

from .conftest import ADMIN_TOKEN
from .pdfmaker import make_pdf
from .test_api import assert_json_error
from .test_ingest import LAYOUTS, chrome, fixture

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HTML = "text/html"

# Questions that only the chrome of a fixture page answers, per layout.
CHROME_QUESTIONS = {
    "fr-news.html": ["Quel est le score du match entre le PSG et Lyon ?", "Combien de partenaires utilisent des cookies ?",
                     "Qui a gagné 17 millions d'euros au Loto ?"],
    "en-wire.html": ["Who did Casper Ruud beat in Rotterdam?", "How many homes lost power in Scotland?",
                     "By how much did chipmaker shares jump?", "What did the runner wear to set a marathon record?"],
    "gov-release.html": ["Quand est versée la prime de Noël ?", "Comment payer son fioul avec le chèque énergie ?"],
}
# ... and questions their articles answer.
ARTICLE_QUESTIONS = {
    "fr-news.html": ("Combien de signatures la tribune a-t-elle recueillies ?", "3 200 signatures"),
    "en-wire.html": ("How many countries backed the statement?", "58 countries"),
    "gov-release.html": ("Quels organismes l'INESIA fédérera-t-il ?", "Laboratoire national de métrologie"),
}


def upload(client: TestClient, raw: bytes, filename: str | None, content_type: str = HTML, headers: dict | None = None,
           **fields: str) -> Any:
    return client.post("/api/documents", files={"file": (filename, raw, content_type)}, data=fields,
                       headers=AUTH if headers is None else headers)


def state(assistant: Assistant) -> tuple[str, list[str]]:
    docs = assistant.settings.documents_dir
    return assistant.index.build_id, sorted(str(p.relative_to(docs)) for p in docs.rglob("*"))


# ---- auth --------------------------------------------------------------------------------------


def test_admin_routes_need_the_token(admin_client: TestClient, own_assistant: Assistant) -> None:
    before = state(own_assistant)
    for headers, status in [({}, 401), ({"Authorization": "Basic abc"}, 401), ({"Authorization": "Bearer wrong"}, 403)]:
        assert_json_error(upload(admin_client, fixture("en-wire.html"), "en-wire.html", headers=headers), status)
        assert_json_error(admin_client.delete("/api/documents/rtl-une-semaine-pour-l-ia", headers=headers), status)
    assert state(own_assistant) == before


def test_without_a_configured_token_the_routes_do_not_exist(client: TestClient) -> None:
    assert_json_error(client.post("/api/documents", files={"file": ("a.html", b"<p>x</p>", HTML)}, headers=AUTH), 404)
    assert_json_error(client.delete("/api/documents/rtl-une-semaine-pour-l-ia", headers=AUTH), 404)


# ---- add, answer, delete -----------------------------------------------------------------------


@pytest.mark.parametrize("name", LAYOUTS)
def test_upload_returns_the_metadata_and_is_answerable_at_once(admin_client: TestClient, own_assistant: Assistant, name: str) -> None:
    build_before = own_assistant.index.build_id
    r = upload(admin_client, fixture(name), name)
    assert r.status_code == 201, r.text
    body = r.json()
    doc_id = name.removesuffix(".html")
    assert body["doc_id"] == doc_id and r.headers["location"] == f"/api/documents/{doc_id}"
    assert {k: body[k] for k in LAYOUTS[name]["meta"]} == LAYOUTS[name]["meta"]
    assert body["format"] == "html" and body["original"] == f"originals/{doc_id}.html" and body["chunks"] > 0
    assert body["build_id"] == own_assistant.index.build_id != build_before
    assert admin_client.get("/api/health").json()["documents"] == 3
    question, expected = ARTICLE_QUESTIONS[name]
    answer = admin_client.post("/api/ask", json={"question": question}).json()
    assert answer["found"], answer
    assert answer["citations"][0]["doc_id"] == doc_id and expected in answer["citations"][0]["passage"]
    assert answer["citations"][0]["title"] == LAYOUTS[name]["meta"]["title"]
    text = admin_client.get(f"/api/documents/{doc_id}").json()["text"]
    assert [s for s in chrome(name) if s.lower() in text.lower()] == []
    docs = own_assistant.settings.documents_dir
    assert (docs / f"{doc_id}.md").is_file() and (docs / "originals" / f"{doc_id}.html").read_bytes() == fixture(name)


def test_upload_pdf_text_and_markdown(admin_client: TestClient, own_assistant: Assistant) -> None:
    pdf = make_pdf([["Déclaration sur une intelligence artificielle inclusive et durable",
                     "Les signataires s’engagent à réduire la fracture numérique entre les pays et à promouvoir",
                     "une intelligence artificielle ouverte, éthique et digne de confiance."]], info={"Title": "Déclaration de Paris"})
    r = upload(admin_client, pdf, "declaration.pdf", "application/pdf", source="Élysée", published="2025-02-11")
    assert r.status_code == 201, r.text
    assert (r.json()["format"], r.json()["title"], r.json()["source"], r.json()["published"]) == ("pdf", "Déclaration de Paris", "Élysée", "2025-02-11")
    r = upload(admin_client, "Dépêche\n\nLe sommet de Paris accueillera une centaine de délégations étrangères.".encode(),
               "depeche.txt", "text/plain", source="Agence", id="depeche-sommet")
    assert r.status_code == 201 and r.json()["doc_id"] == "depeche-sommet" and r.json()["original"] == "originals/depeche-sommet.txt"
    md = b"---\ntitle: Note\nsource: Redaction\nlanguage: fr\n---\nUne note interne sur le sommet et ses invites.\n"
    r = upload(admin_client, md, "note.md", "text/markdown")
    assert r.status_code == 201 and r.json()["format"] == "markdown" and r.json()["original"] is None
    # a file name without extension (a browser's Blob): the type is sniffed and the id comes from the title
    r = upload(admin_client, fixture("gov-release.html"), "blob", "application/octet-stream")
    assert r.status_code == 201, r.text
    assert r.json()["doc_id"].startswith("lancement-de-l-institut-national")
    assert len(admin_client.get("/api/documents").json()) == 6


@pytest.mark.parametrize(
    "raw, filename, fields, status, fragment",
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "photo.png", {}, 415, "unsupported type"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "photo.html", {}, 415, "PNG image"),
        (b"\x7fELF\x02\x01\x01" + bytes(200), "blob", {}, 415, "program"),
        (b"<html><body><nav><a href='/'>Accueil</a><a href='/b'>B</a></nav></body></html>", "menu.html", {}, 422, "empty after extraction"),
        (b"", "empty.html", {}, 422, "is empty"),
        (b"%PDF-1.7 not really", "x.pdf", {"source": "S", "title": "T"}, 422, "not a readable PDF"),
        (make_pdf([[], []]), "scan.pdf", {"source": "S", "title": "T"}, 422, "no text layer"),
        (b"Titre\n\nUn texte de plusieurs mots sans editeur.", "a.txt", {}, 422, "needs a source"),
        (None, "en-wire.html", {"id": "../../etc/passwd"}, 422, "not a valid document id"),
        (None, "en-wire.html", {"id": "UPPER"}, 422, "not a valid document id"),
        (None, "en-wire.html", {"language": "de"}, 422, "language must be"),
        (None, "en-wire.html", {"published": "demain"}, 422, "published must be"),
        (None, "en-wire.html", {"url": "javascript:alert(1)"}, 422, "url must be"),
        (None, "en-wire.html", {"colour": "blue"}, 422, "unknown form field"),
        (None, "rtl-une-semaine-pour-l-ia.html", {}, 409, "already exists"),
    ],
)
def test_bad_uploads_are_4xx_and_change_nothing(admin_client: TestClient, own_assistant: Assistant, raw: bytes | None,
                                                filename: str | None, fields: dict, status: int, fragment: str) -> None:
    before = state(own_assistant)
    r = upload(admin_client, fixture("en-wire.html") if raw is None else raw, filename, **fields)
    assert_json_error(r, status, fragment)
    assert state(own_assistant) == before
    assert admin_client.post("/api/ask", json={"question": "Qui co-préside le sommet ?"}).json()["found"]


def test_duplicates_by_url_and_by_text(admin_client: TestClient, own_assistant: Assistant) -> None:
    assert upload(admin_client, fixture("fr-news.html"), "fr-news.html").status_code == 201
    before = state(own_assistant)
    assert_json_error(upload(admin_client, fixture("fr-news.html"), "copie.html"), 409, "same URL")
    rtl = (own_assistant.settings.documents_dir / "rtl-une-semaine-pour-l-ia.md").read_text(encoding="utf-8").split("---\n", 2)[2]
    assert_json_error(upload(admin_client, rtl.encode(), "rtl.txt", "text/plain", source="RTL", title="RTL"), 409, "same text")
    assert state(own_assistant) == before


def test_malformed_requests(admin_client: TestClient, own_assistant: Assistant) -> None:
    before = state(own_assistant)
    assert_json_error(admin_client.post("/api/documents", json={"file": "x"}, headers=AUTH), 415, "multipart/form-data")
    assert_json_error(admin_client.post("/api/documents", files={"other": ("a.html", b"b")}, headers=AUTH), 422, "'file' is missing")
    assert_json_error(admin_client.post("/api/documents", files={"title": (None, "x")}, headers=AUTH), 422, "'file' is missing")
    r = admin_client.post("/api/documents", content=b"--xyz\r\ngarbage", headers={**AUTH, "Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code in (400, 422), r.text
    assert_json_error(admin_client.post("/api/documents", data={"title": "only a field"}, headers=AUTH), 415)  # url-encoded
    assert_json_error(admin_client.post("/api/documents", data={"title": "x"}, files={"doc": ("a.html", b"<p>x</p>")}, headers=AUTH), 422)
    two = [("file", ("a.html", fixture("en-wire.html"), HTML)), ("file", ("b.html", fixture("fr-news.html"), HTML))]
    assert admin_client.post("/api/documents", files=two, headers=AUTH).status_code in (400, 422)
    assert state(own_assistant) == before


def test_size_limit(own_assistant: Assistant, own_api_settings: ApiSettings) -> None:
    from api.app import create_app

    settings = own_assistant.settings.model_copy(update={"max_upload_bytes": 4096})
    with TestClient(create_app(settings, own_assistant, own_api_settings)) as client:
        before = state(own_assistant)
        assert_json_error(upload(client, fixture("fr-news.html"), "big.html"), 413, "limit")

        def chunks():  # no Content-Length: counted as it arrives (past the file limit plus the framing allowance)
            for _ in range(100):
                yield b"x" * 1024

        r = client.post("/api/documents", content=chunks(), headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"})
        assert_json_error(r, 413, "limit")
        # the ordinary request limit still holds everywhere else
        assert_json_error(client.post("/api/ask", json={"question": "x" * 70_000}), 413)
        assert state(own_assistant) == before
        assert client.app.state.internal_errors == 0


def test_delete_round_trip(admin_client: TestClient, own_assistant: Assistant) -> None:
    before = state(own_assistant)[1]
    assert upload(admin_client, fixture("en-wire.html"), "en-wire.html").status_code == 201
    assert admin_client.post("/api/ask", json={"question": "How many countries backed the statement?"}).json()["citations"][0]["doc_id"] == "en-wire"
    r = admin_client.delete("/api/documents/en-wire", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == "en-wire" and r.json()["files"] == ["en-wire.md", "originals/en-wire.html"]
    assert r.json()["documents"] == 2 and r.json()["build_id"] == own_assistant.index.build_id
    answer = admin_client.post("/api/ask", json={"question": "How many countries backed the statement?"}).json()
    assert all(c["doc_id"] != "en-wire" for c in answer["citations"])
    assert_json_error(admin_client.get("/api/documents/en-wire"), 404)
    assert [f for f in state(own_assistant)[1] if f != "originals"] == before
    assert_json_error(admin_client.delete("/api/documents/en-wire", headers=AUTH), 404, "no such document")
    assert_json_error(admin_client.delete("/api/documents/UPPER", headers=AUTH), 422, "not a valid document id")
    assert admin_client.delete("/api/documents/..", headers=AUTH).status_code in (404, 422)
    assert admin_client.delete("/api/documents/%2e%2e%2fetc", headers=AUTH).status_code in (404, 422)
    assert admin_client.delete("/api/documents/macron-invite-musk-trump", headers=AUTH).status_code == 200
    assert_json_error(admin_client.delete("/api/documents/rtl-une-semaine-pour-l-ia", headers=AUTH), 422, "only document")
    assert admin_client.get("/api/health").json()["documents"] == 1


def test_hostile_page_metadata_is_returned_as_data(admin_client: TestClient) -> None:
    page = HOSTILE_PAGE.encode()
    r = upload(admin_client, page, "hostile.html")
    assert r.status_code == 201, r.text
    assert r.json()["title"] == HOSTILE_TITLE and r.json()["source"] == HOSTILE_SOURCE
    assert r.headers["content-type"].startswith("application/json")


HOSTILE_TITLE = '<img src=x onerror="alert(1)"> Sommet <script>alert(2)</script>'
HOSTILE_SOURCE = "<b onmouseover=alert(3)>Agence</b>"
HOSTILE_PAGE = f"""<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>{HOSTILE_TITLE.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</title>
<meta property="og:site_name" content="{HOSTILE_SOURCE.replace('<', '&lt;').replace('>', '&gt;')}">
<meta property="article:published_time" content="2025-02-10T08:00:00+01:00">
<script>alert(4)</script></head><body onload="alert(5)">
<article><p>La délégation de Bretagne apportera au Grand Palais un kouign-amann géant de 40 kilos pour le déjeuner des délégués.</p>
<p>Le gâteau sera découpé &lt;img src=y onerror=alert(6)&gt; par le chef Yannick Le Goff devant les caméras.</p></article>
</body></html>"""
HOSTILE_QUESTION = "Combien pèse le kouign-amann géant ?"


# ---- boilerplate is never indexed or cited -----------------------------------------------------


@pytest.fixture(scope="module")
def with_fixtures(tmp_path_factory: pytest.TempPathFactory, pristine_corpus: Path, summit_assistant: Assistant) -> Assistant:
    from assistant.ingest import Input, add_documents

    from .conftest import _corpus_copy

    docs, index = _corpus_copy(pristine_corpus, tmp_path_factory.mktemp("with-fixtures"))
    settings = summit_assistant.settings.model_copy(update={"documents_dir": docs, "index_dir": index})
    assistant = Assistant(settings, embedder=summit_assistant.embedder).load(rebuild="never")
    add_documents(assistant, [Input(fixture(name), name) for name in LAYOUTS])
    return assistant


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory, pristine_corpus: Path, summit_assistant: Assistant) -> Assistant:
    """The same pages with all their visible text indexed (what happens without extraction)."""
    from assistant.ingest import Input, Overrides, add_documents

    from .conftest import _corpus_copy

    docs, index = _corpus_copy(pristine_corpus, tmp_path_factory.mktemp("control"))
    settings = summit_assistant.settings.model_copy(update={"documents_dir": docs, "index_dir": index, "boilerplate_patterns": []})
    assistant = Assistant(settings, embedder=summit_assistant.embedder).load(rebuild="any")
    add_documents(assistant, [Input(_visible_lines(name).encode(), name.replace(".html", ".txt"), Overrides(source="Raw", title=name))
                              for name in LAYOUTS])
    return assistant


def _visible_lines(name: str) -> str:
    import lxml.html

    tree = lxml.html.document_fromstring(fixture(name).decode())
    for el in tree.xpath("//script|//style|//head"):
        el.getparent().remove(el)
    blocks = ("p", "li", "h1", "h2", "h3", "div", "a", "button", "span", "label", "ul", "ol", "section")
    leaves = [el for el in tree.iter("p", "li", "h1", "h2", "h3", "a", "button", "span", "label", "div")
              if not any(isinstance(c.tag, str) and c.tag in blocks for c in el)]
    return "\n".join(dict.fromkeys(t for t in (re.sub(r"\s+", " ", el.text_content()).strip() for el in leaves) if t))


@pytest.mark.parametrize("name", LAYOUTS)
def test_no_chrome_is_indexed(with_fixtures: Assistant, name: str) -> None:
    doc_id = name.removesuffix(".html")
    indexed = with_fixtures.index.documents[doc_id]["text"]
    assert [s for s in chrome(name) if s.lower() in indexed.lower()] == []
    every_passage = " ".join(with_fixtures.index.chunk_text(i) for i in range(len(with_fixtures.index.chunks))).lower()
    assert [s for s in chrome(name) if len(s) > 12 and s.lower() in every_passage] == []
    for sentence in LAYOUTS[name]["article"]:
        assert sentence in indexed


@pytest.mark.parametrize("name, question", [(n, q) for n, qs in CHROME_QUESTIONS.items() for q in qs])
def test_a_question_only_the_chrome_answers_is_abstained_on(with_fixtures: Assistant, control: Assistant, name: str, question: str) -> None:
    answer = with_fixtures.ask(question, k=5)
    assert not answer.found, (question, answer.answer)
    # The control proves the question is a real test: with the chrome indexed, it is answered from it.
    raw = control.ask(question, k=5)
    assert raw.found and raw.citations[0].doc_id == name.replace(".html", ""), (question, raw.answer)


@pytest.mark.parametrize("name", LAYOUTS)
def test_nothing_cited_holds_chrome(with_fixtures: Assistant, name: str) -> None:
    chrome_words = [s for s in chrome(name) if len(s) > 12]
    for question in CHROME_QUESTIONS[name] + [ARTICLE_QUESTIONS[name][0]]:
        for c in with_fixtures.ask(question, k=10).citations:
            assert [s for s in chrome_words if s.lower() in c.passage.lower()] == [], (question, c.passage)


# ---- feedback and suggestions ------------------------------------------------------------------


def test_feedback_is_stored_append_only(admin_client: TestClient, own_assistant: Assistant, own_api_settings: ApiSettings) -> None:
    ask = admin_client.post("/api/ask", json={"question": "Qui co-préside le sommet ?"})
    build = ask.headers["x-summit-build"]
    assert build == own_assistant.index.build_id
    c = ask.json()["citations"][0]
    vote = {"verdict": "down", "question": "Qui co-préside le sommet ?", "history": [], "answer": ask.json()["answer"],
            "found": True, "language": "fr", "build_id": build,
            "citations": [{"n": 1, "doc_id": c["doc_id"], "chunk_id": c["chunk_id"], "title": c["title"], "source": c["source"],
                           "quote": "Le dirigeant indien Narendra Modi co-présidera l'événement."}]}
    r = admin_client.post("/api/feedback", json=vote)
    assert r.status_code == 201 and r.json()["stored"] is True and r.json()["build_id"] == build
    assert admin_client.post("/api/feedback", json={**vote, "verdict": "up", "build_id": None}).status_code == 201
    lines = Path(own_api_settings.feedback_file).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["verdict"] for r in rows] == ["down", "up"] and rows[1]["build_id"] == build
    assert rows[0]["citations"][0]["doc_id"] == c["doc_id"] and rows[0]["answer"] == "Narendra Modi"
    for bad, fragment in [({**vote, "verdict": "maybe"}, "verdict"), ({**vote, "question": ""}, "question"),
                          ({**vote, "extra": 1}, "extra"), ({**vote, "citations": [{}] * 21}, "citations")]:
        assert_json_error(admin_client.post("/api/feedback", json=bad), 422, fragment)
    assert len(Path(own_api_settings.feedback_file).read_text(encoding="utf-8").splitlines()) == 2


def test_feedback_can_be_turned_off(own_assistant: Assistant, own_api_settings: ApiSettings) -> None:
    from api.app import create_app

    with TestClient(create_app(own_assistant.settings, own_assistant, own_api_settings.model_copy(update={"feedback_file": ""}))) as client:
        assert_json_error(client.post("/api/feedback", json={"verdict": "up", "question": "Q ?"}), 404, "turned off")


def test_suggestions_are_only_the_answered_ones(own_assistant: Assistant, own_api_settings: ApiSettings) -> None:
    from api.app import create_app

    configured = ["Qui co-préside le sommet ?", "Quelle est la recette de la tartiflette ?", "Who co-chairs the summit?"]
    api_settings = own_api_settings.model_copy(update={"suggested_questions": configured})
    with TestClient(create_app(own_assistant.settings, own_assistant, api_settings)) as client:
        body = client.get("/api/suggestions").json()
        assert body["build_id"] == own_assistant.index.build_id
        assert body["questions"] == [{"question": "Qui co-préside le sommet ?", "language": "fr"},
                                     {"question": "Who co-chairs the summit?", "language": "en"}]


def test_default_suggestions_are_all_answered_by_the_shipped_corpus(client: TestClient) -> None:
    from api.settings import DEFAULT_SUGGESTED_QUESTIONS

    body = client.get("/api/suggestions").json()
    assert [q["question"] for q in body["questions"]] == DEFAULT_SUGGESTED_QUESTIONS
    assert {q["language"] for q in body["questions"]} == {"fr", "en"}


def test_suggestions_follow_the_index(own_assistant: Assistant, own_api_settings: ApiSettings) -> None:
    """A suggestion the corpus cannot answer appears once an article that answers it is added."""
    from api.app import create_app

    configured = ["Who co-chairs the summit?", "What did the British government spokesperson say about the text?"]
    api_settings = own_api_settings.model_copy(update={"suggested_questions": configured})
    with TestClient(create_app(own_assistant.settings, own_assistant, api_settings)) as client:
        assert [q["question"] for q in client.get("/api/suggestions").json()["questions"]] == configured[:1]
        assert upload(client, fixture("en-wire.html"), "en-wire.html").status_code == 201
        after = client.get("/api/suggestions").json()
        assert after["build_id"] == own_assistant.index.build_id
        assert [q["question"] for q in after["questions"]] == configured
        assert client.delete("/api/documents/en-wire", headers=AUTH).status_code == 200
        assert [q["question"] for q in client.get("/api/suggestions").json()["questions"]] == configured[:1]


def test_replace_with_a_corrected_version(admin_client: TestClient, own_assistant: Assistant) -> None:
    assert upload(admin_client, fixture("en-wire.html"), "en-wire.html").status_code == 201
    corrected = fixture("en-wire.html").replace(b"backed by 58 countries", b"backed by 61 countries")
    assert_json_error(upload(admin_client, corrected, "en-wire.html"), 409, "already exists")
    assert_json_error(upload(admin_client, corrected, "en-wire.html", replace="maybe"), 422, "replace")
    r = upload(admin_client, corrected, "en-wire.html", replace="true")
    assert r.status_code == 201 and r.json()["doc_id"] == "en-wire"
    answer = admin_client.post("/api/ask", json={"question": "How many countries backed the statement?"}).json()
    assert "61 countries" in answer["citations"][0]["passage"]
    assert admin_client.get("/api/health").json()["documents"] == 3
