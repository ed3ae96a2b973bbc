"""The chat widget in a real browser: Debian's Chromium driven by Playwright against a live
uvicorn server on 127.0.0.1, with the real model on the real articles.

No timed assertions: Playwright's ``expect`` waits for a state and fails only if it never comes.
When Chromium is missing these tests skip, except under CI=true where they must fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # fixtures come from conftest; import the type only
    from tests.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "browser"
CO_CHAIR = "Qui co-préside le sommet ?"
OFF_TOPIC = "Quelle est la recette de la tartiflette ?"
XSS = "<img src=x onerror=alert(1)>"


# The session's Chromium (the ``browser`` fixture) is in conftest.py, shared with test_browser_evidence.py:
# Playwright's sync API allows one instance at a time.


class Page:
    """A page on the demo, recording dialogs, console errors and CSP violations."""

    def __init__(self, page: Any, url: str) -> None:
        self.page, self.url = page, url
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def by(self, testid: str) -> Any:
        return self.page.get_by_test_id(f"summit-{testid}")

    def open(self) -> None:
        self.page.goto(self.url + "/")
        self.by("launcher").click()
        self.expect(self.by("panel")).to_be_visible()

    def ask(self, question: str) -> Any:
        """Type and send a question; return the locator of the reply message."""
        replies = self.page.locator('[data-testid="summit-msg"]:not([data-role=user])')
        before = replies.count()
        self.by("input").fill(question)
        self.by("input").press("Enter")
        self.expect(replies).to_have_count(before + 1)
        return replies.nth(before)

    @property
    def expect(self) -> Any:
        from playwright.sync_api import expect

        return expect

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def make_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    contexts: list[Any] = []
    pages: list[Page] = []

    def make(width: int = 1000, height: int = 700) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR")
        context.set_default_timeout(20_000)
        contexts.append(context)
        pages.append(Page(context.new_page(), live_server.url))
        return pages[-1]

    yield make
    for context in contexts:
        context.close()
    for page in pages:  # a strict CSP must not have blocked anything, and no script may have failed
        assert page.errors == [], page.errors
        assert page.dialogs == [], page.dialogs


@pytest.fixture
def page(make_page: Any) -> Page:
    return make_page()


def test_answer_badge_and_highlighted_passage(page: Page) -> None:
    page.open()
    reply = page.ask(CO_CHAIR)
    page.expect(reply).to_have_attribute("data-role", "assistant")
    page.expect(reply.get_by_test_id("summit-answer")).to_contain_text("Narendra Modi")
    badge = reply.get_by_test_id("summit-badge").first
    page.expect(badge).to_have_text("[1]")
    badge.click()
    page.expect(page.by("detail")).to_be_visible()
    page.expect(badge).to_have_attribute("aria-expanded", "true")
    mark = page.by("detail").get_by_test_id("summit-highlight").first
    page.expect(mark).to_contain_text("Modi")
    page.shot("answer-detail")
    if os.environ.get("SUMMIT_UPDATE_SCREENSHOT") == "1":  # refresh the committed screenshot on demand
        page.page.screenshot(path=str(REPO / "docs" / "widget.png"))

    # the whole document, scrolled to the same highlighted sentence
    page.by("open-doc").click()
    page.expect(page.by("doc-text").get_by_test_id("summit-highlight").first).to_contain_text("Narendra Modi co-présidera")
    page.shot("document")


def test_not_found_state(page: Page) -> None:
    page.open()
    reply = page.ask(OFF_TOPIC)
    page.expect(reply).to_have_attribute("data-role", "notfound")
    page.expect(reply.get_by_test_id("summit-answer")).to_have_text("Je ne trouve pas la réponse à cette question dans mes sources.")
    page.expect(reply.get_by_test_id("summit-badge")).to_have_count(0)
    page.shot("not-found")


def test_markup_in_a_question_stays_text(page: Page) -> None:
    page.open()
    reply = page.ask(XSS)
    question = page.page.locator('[data-testid="summit-msg"][data-role=user] p').last
    page.expect(question).to_have_text(XSS)  # shown literally, as text
    page.expect(reply).to_be_visible()
    assert page.page.locator("[data-summit-widget] img").count() == 0
    assert page.page.locator("img").count() == 0
    assert page.dialogs == []


def test_keyboard_only(page: Page) -> None:
    page.page.goto(page.url + "/")
    keyboard = page.page.keyboard
    for _ in range(20):  # Tab through the demo page until the launcher has focus
        keyboard.press("Tab")
        if page.page.evaluate("document.activeElement.dataset.testid") == "summit-launcher":
            break
    page.expect(page.by("launcher")).to_be_focused()
    keyboard.press("Enter")
    page.expect(page.by("panel")).to_be_visible()
    page.expect(page.by("input")).to_be_focused()
    keyboard.type(CO_CHAIR)
    keyboard.press("Enter")
    page.expect(page.by("answer").last).to_contain_text("Narendra Modi")

    # Tab to the first badge, open it with Enter; Escape goes back, a second Escape closes
    badge = page.by("badge").first
    for _ in range(30):  # back from the input through the badges, [5] ... [1]
        keyboard.press("Shift+Tab")
        if page.page.evaluate("document.activeElement.dataset.n") == "1":
            break
    page.expect(badge).to_be_focused()
    keyboard.press("Enter")
    page.expect(page.by("detail")).to_be_visible()
    page.expect(page.by("back")).to_be_focused()
    keyboard.press("Escape")
    page.expect(page.by("detail")).to_be_hidden()
    page.expect(badge).to_be_focused()
    keyboard.press("Escape")
    page.expect(page.by("panel")).to_be_hidden()
    page.expect(page.by("launcher")).to_be_focused()


def test_small_screen(make_page: Any) -> None:
    page = make_page(360, 640)
    page.open()
    box = page.by("panel").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["y"] >= 0 and box["y"] + box["height"] <= 640
    for part in ("input", "close"):
        page.expect(page.by(part)).to_be_in_viewport()
    page.expect(page.page.get_by_role("button", name="Envoyer")).to_be_in_viewport()
    reply = page.ask(CO_CHAIR)
    page.expect(reply.get_by_test_id("summit-answer")).to_be_in_viewport()
    reply.get_by_test_id("summit-badge").first.click()
    page.expect(page.by("detail").get_by_test_id("summit-highlight").first).to_be_in_viewport()
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    page.shot("small-screen")
