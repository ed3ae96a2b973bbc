"""The widget's evidence, copy, feedback and suggestions (issue #11) in Chromium, against a live
server with an admin token over a private copy of the articles (conftest ``admin_server``), to
which the tests upload a French news page and a hostile page.

No timed assertions: Playwright's ``expect`` waits for a state and fails only if it never comes.
When Chromium is missing these tests skip, except under CI=true where they must fail."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from .conftest import ADMIN_TOKEN
from .test_api_documents import HOSTILE_PAGE, HOSTILE_QUESTION, HOSTILE_SOURCE, HOSTILE_TITLE
from .test_browser import Page
from .test_ingest import fixture

if TYPE_CHECKING:
    from tests.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
SIGNATURES = "Combien de signatures la tribune a-t-elle recueillies ?"
CO_CHAIR = "Qui co-préside le sommet ?"


@pytest.fixture(scope="module")
def uploaded(admin_server: LiveServer) -> LiveServer:
    """The server with the French news fixture added through the API."""
    with admin_http(admin_server) as http:
        r = http.post("/api/documents", files={"file": ("fr-news.html", fixture("fr-news.html"), "text/html")})
        assert r.status_code == 201, r.text
    return admin_server


def admin_http(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120)


@pytest.fixture
def hostile(uploaded: LiveServer) -> Iterator[str]:
    """The hostile page added for one test, then deleted again."""
    with admin_http(uploaded) as http:
        r = http.post("/api/documents", files={"file": ("hostile.html", HOSTILE_PAGE.encode(), "text/html")})
        assert r.status_code == 201, r.text
        yield r.json()["doc_id"]
        assert http.delete(f"/api/documents/{r.json()['doc_id']}").status_code == 200


@pytest.fixture
def make_page(browser: Any, uploaded: LiveServer) -> Iterator[Any]:
    contexts: list[Any] = []
    pages: list[Page] = []

    def make(width: int = 1000, height: int = 720, locale: str = "fr-FR") -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=uploaded.url)
        context.set_default_timeout(20_000)
        contexts.append(context)
        pages.append(Page(context.new_page(), uploaded.url))
        return pages[-1]

    yield make
    for context in contexts:
        context.close()
    for page in pages:  # a strict CSP must not have blocked anything, no script may have failed, no alert()
        assert page.errors == [], page.errors
        assert page.dialogs == [], page.dialogs


@pytest.fixture
def page(make_page: Any) -> Page:
    return make_page()


def test_suggestions_are_the_configured_ones_the_index_answers(page: Page, uploaded: LiveServer) -> None:
    page.open()
    chips = page.by("suggestion")
    # configured: two answered French questions, one French and one English that the corpus cannot answer
    page.expect(chips).to_have_text(["Qui co-préside le sommet ?", "Où se réuniront les chefs d'État ?"])
    page.by("lang").click()
    page.expect(chips).to_have_text(["Who co-chairs the summit?"])
    page.expect(page.by("suggestions")).to_have_attribute("aria-label", "Suggested questions")
    chips.first.click()
    reply = page.page.locator('[data-testid="summit-msg"]:not([data-role=user])').last
    page.expect(reply).to_have_attribute("data-role", "assistant")
    page.expect(reply.get_by_test_id("summit-answer")).to_have_text("Narendra Modi")


def test_the_answering_sentence_is_quoted_with_source_and_date(page: Page) -> None:
    page.open()
    reply = page.ask(SIGNATURES)
    page.expect(reply.get_by_test_id("summit-answer")).to_contain_text("3 200 signatures")
    quote = reply.get_by_test_id("summit-quote")
    page.expect(quote).to_be_visible()  # visible without clicking anything
    page.expect(quote).to_contain_text("Le texte, coordonné par le collectif Numérique Sobre, a recueilli 3 200 signatures")
    page.expect(quote.get_by_test_id("summit-highlight")).to_contain_text("3 200 signatures")  # the short answer, marked in it
    page.expect(reply.get_by_test_id("summit-quote-source")).to_have_text("— La Gazette du Numérique, 9 février 2025")
    # citations are grouped under their source's name, each [n] still opens its passage
    first_group = reply.get_by_test_id("summit-source-group").first
    page.expect(first_group.get_by_test_id("summit-source-name")).to_have_text("La Gazette du Numérique")
    page.expect(first_group.get_by_test_id("summit-badge").first).to_have_text("[1]")
    page.expect(first_group.get_by_test_id("summit-badge").first).to_have_attribute(
        "aria-label", "Source 1 : La Gazette du Numérique — Sommet IA : au Grand Palais, les associations réclament une IA frugale")
    page.by("lang").click()  # the date follows the interface language
    page.expect(reply.get_by_test_id("summit-quote-source")).to_have_text("— La Gazette du Numérique, 9 February 2025")
    page.shot("evidence")
    if os.environ.get("SUMMIT_UPDATE_SCREENSHOT") == "1":
        page.by("lang").click()
        page.page.screenshot(path=str(REPO / "docs" / "widget-evidence.png"))


def test_a_sentence_answer_is_not_quoted_twice(page: Page) -> None:
    page.open()
    reply = page.ask("Qui est Arthur Mensch ?")  # a description: the answer is the sentence itself
    page.expect(reply).to_have_attribute("data-role", "assistant")
    page.expect(reply.get_by_test_id("summit-answer")).to_contain_text("Arthur Mensch")
    page.expect(reply.get_by_test_id("summit-quote")).to_have_count(0)
    page.expect(reply.get_by_test_id("summit-quote-source")).to_have_text("— RTL")  # the shipped articles carry no date


def test_copy_answer_with_sources(page: Page) -> None:
    page.open()
    reply = page.ask(SIGNATURES)
    reply.get_by_test_id("summit-copy").click()
    page.expect(reply.get_by_test_id("summit-status")).to_have_text("Réponse et sources copiées.")
    copied = page.page.evaluate("navigator.clipboard.readText()")
    lines = copied.split("\n")
    assert lines[0].startswith("3 200 signatures")
    assert lines[1].startswith("«\u00a0Le texte, coordonné par le collectif Numérique Sobre") and lines[1].endswith(
        "heures.\u00a0» — La Gazette du Numérique, 9 février 2025")
    assert lines[2] == "" and lines[3] == "Sources\u00a0:"
    assert lines[4] == ("[1] Sommet IA : au Grand Palais, les associations réclament une IA frugale — La Gazette du Numérique — "
                        "9 février 2025 <https://www.gazette-numerique.example/tech/2025/02/09/sommet-ia-associations-ia-frugale_4821.html>")
    assert len([ln for ln in lines if ln.startswith("[")]) == reply.get_by_test_id("summit-badge").count()


def test_thumbs_feedback_is_stored_on_the_server(page: Page, uploaded: LiveServer) -> None:
    store = Path(uploaded.app.state.feedback.path)
    before = store.read_text(encoding="utf-8").splitlines() if store.exists() else []
    page.open()
    reply = page.ask(SIGNATURES)
    down = reply.get_by_test_id("summit-down")
    page.expect(down).to_have_attribute("aria-label", "Réponse fausse ou inutile")
    down.click()
    page.expect(reply.get_by_test_id("summit-status")).to_have_text("Merci, votre avis est enregistré.")
    page.expect(down).to_have_attribute("aria-pressed", "true")
    page.expect(reply.get_by_test_id("summit-up")).to_be_disabled()  # one vote per answer
    lines = store.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(before) + 1
    vote = json.loads(lines[-1])
    assert vote["verdict"] == "down" and vote["question"] == SIGNATURES and vote["answer"].startswith("3 200 signatures")
    assert vote["build_id"] == uploaded.app.state.assistant.index.build_id and vote["language"] == "fr"
    assert vote["citations"][0]["doc_id"] == "fr-news" and "3 200 signatures" in vote["citations"][0]["quote"]

    # a thumbs-up on an abstention is feedback too
    reply = page.ask("Quelle est la recette de la tartiflette ?")
    page.expect(reply).to_have_attribute("data-role", "notfound")
    page.expect(reply.get_by_test_id("summit-copy")).to_have_count(0)
    reply.get_by_test_id("summit-up").click()
    page.expect(reply.get_by_test_id("summit-status")).to_have_text("Merci, votre avis est enregistré.")
    last = json.loads(store.read_text(encoding="utf-8").splitlines()[-1])
    assert last["verdict"] == "up" and last["found"] is False and last["citations"] == []


def test_a_hostile_page_is_shown_as_text(page: Page, hostile: str) -> None:
    page.open()
    reply = page.ask(HOSTILE_QUESTION)
    page.expect(reply).to_have_attribute("data-role", "assistant")
    page.expect(reply.get_by_test_id("summit-answer")).to_contain_text("40 kilos")
    group = reply.get_by_test_id("summit-source-group").first
    page.expect(group.get_by_test_id("summit-source-name")).to_have_text(HOSTILE_SOURCE)  # literally, tags and all
    badge = group.get_by_test_id("summit-badge").first
    page.expect(badge).to_have_attribute("title", HOSTILE_TITLE)
    page.expect(reply.get_by_test_id("summit-quote-source")).to_have_text(f"— {HOSTILE_SOURCE}, 10 février 2025")
    badge.click()
    page.expect(page.by("detail").locator("h3")).to_have_text(HOSTILE_TITLE)
    page.by("open-doc").click()
    page.expect(page.by("doc-text")).to_contain_text("<img src=y onerror=alert(6)>")
    page.expect(page.by("doc").locator("h3")).to_have_text(HOSTILE_TITLE)
    widget = page.page.locator("[data-summit-widget]")
    assert widget.locator("img, script, b, iframe, object").count() == 0
    assert page.page.locator("img").count() == 0
    page.shot("hostile")


def test_new_controls_by_keyboard(page: Page) -> None:
    page.open()
    keyboard = page.page.keyboard
    page.by("input").fill(SIGNATURES)
    keyboard.press("Enter")
    reply = page.page.locator('[data-testid="summit-msg"][data-role=assistant]').last
    page.expect(reply.get_by_test_id("summit-answer")).to_be_visible()
    for _ in range(10):  # back from the input: thumbs down, thumbs up, copy
        keyboard.press("Shift+Tab")
        if page.page.evaluate("document.activeElement.dataset.testid") == "summit-up":
            break
    page.expect(reply.get_by_test_id("summit-up")).to_be_focused()
    keyboard.press("Enter")
    page.expect(reply.get_by_test_id("summit-up")).to_have_attribute("aria-pressed", "true")
    page.expect(reply.get_by_test_id("summit-status")).to_have_text("Merci, votre avis est enregistré.")
    keyboard.press("Shift+Tab")
    page.expect(reply.get_by_test_id("summit-copy")).to_be_focused()
    keyboard.press("Enter")
    page.expect(reply.get_by_test_id("summit-status")).to_have_text("Réponse et sources copiées.")
    # accessible names for a screen reader, in both languages
    for name in ("Copier la réponse et ses sources", "Réponse utile", "Réponse fausse ou inutile"):
        page.expect(reply.get_by_role("button", name=name, exact=True)).to_have_count(1)
    page.expect(reply.get_by_role("status")).to_have_count(1)
    page.by("lang").click()
    for name in ("Copy the answer with its sources", "Helpful answer", "Wrong or unhelpful answer"):
        page.expect(reply.get_by_role("button", name=name, exact=True)).to_have_count(1)


def test_evidence_at_360_px(make_page: Any) -> None:
    page = make_page(360, 640)
    page.open()
    reply = page.ask(SIGNATURES)
    for part in ("summit-quote", "summit-quote-source", "summit-copy", "summit-up", "summit-down"):
        target = reply.get_by_test_id(part)
        target.scroll_into_view_if_needed()
        page.expect(target).to_be_in_viewport()
        box = target.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, part
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 360
    page.shot("evidence-small-screen")
