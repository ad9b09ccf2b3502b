"""The student chat in Chromium, framed by the fake platform: streamed cited answers, keyboard only, de/en, axe."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import expect

from course_bots import backends
from course_bots.chat.models import Message
from lti_tool.extensions import db
from tests.browser import chat_helpers as helpers, fake_platform

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
chat_ready, ensure_material, TEACHER_PROMPT = helpers.chat_ready, helpers.ensure_material, helpers.TEACHER_PROMPT
ANSWER = ("Photosynthesis converts **light energy** into chemical energy in the chloroplasts [1]. "
          "It needs water and carbon dioxide [1].")
QUESTION = "Where does photosynthesis take place and what does it convert?"


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The tool (running in this process) answers through a slow fake OpenAI-compatible server."""
    server = helpers.FakeModelServer(ANSWER)
    helpers.answer_through(monkeypatch, server.base_url)
    yield server
    server.stop()
    backends.forget_backends()


def stream_watch(frame: Any) -> None:
    """Record every distinct length of the streaming answer text (each is an incremental page update)."""
    frame.evaluate("""() => {
      window.__cbLengths = new Set();
      new MutationObserver(() => {
        const live = document.querySelectorAll('.cb-streaming');
        const last = live[live.length - 1];
        if (last && last.textContent.length) window.__cbLengths.add(last.textContent.length);
      }).observe(document.querySelector('[data-cb="log"]'), {subtree: true, childList: true, characterData: true});
    }""")


def test_teacher_prompt_and_pdf_then_student_gets_streamed_cited_answer(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], fake_model: Any, tool_server: Any,
        screenshot: Callable[..., Path]) -> None:
    teacher = ensure_material(launch, tool_frame)
    screenshot(teacher, SCREENSHOTS / "teacher-materials.png")
    page = launch("student")
    frame = tool_frame(page)
    chat_ready(frame)
    stream_watch(frame)
    frame.locator('[data-cb="question"]').fill(QUESTION)
    frame.locator('[data-cb="send"]').click()
    answer = frame.locator(".cb-assistant .cb-answer").last
    expect(answer.locator("strong")).to_have_text("light energy")  # the done event's rendered markdown
    updates = frame.evaluate("() => window.__cbLengths.size")
    assert updates >= 3, f"only {updates} incremental updates while streaming"
    assert TEACHER_PROMPT in fake_model.requests[-1]["messages"][0]["content"]
    assert "Photosynthesis converts light energy" in fake_model.requests[-1]["messages"][-1]["content"]
    expect(frame.locator('[data-cb="announce"]')).to_contain_text("chemical energy")
    cite = answer.locator("button.cb-cite").first
    cite.click()
    panel = frame.locator('[data-cb="sources"]')
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("photosynthesis.pdf")
    expect(panel).to_contain_text(re.compile(r"(page|Seite) 1"))
    expect(panel.locator("blockquote").first).to_contain_text("chloroplasts")
    link = panel.locator("a").first
    href = link.get_attribute("href") or ""
    assert "/file?sig=" in href
    response = page.context.request.get(tool_server.base_url + href.split("#")[0])
    assert response.status == 200 and response.headers["content-type"].startswith("application/pdf")
    screenshot(page, SCREENSHOTS / "student-chat.png")


def test_keyboard_only_ask_cite_and_close(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                          fake_model: Any) -> None:
    ensure_material(launch, tool_frame)
    page = launch("student")
    frame = tool_frame(page)
    chat_ready(frame, accept=False)
    if frame.locator('[data-cb="consent-accept"]').is_visible():
        frame.locator('[data-cb="consent-accept"]').focus()
        page.keyboard.press("Enter")
    question = frame.locator('[data-cb="question"]')
    for _ in range(40):  # Tab until the question field has focus, as a keyboard user would
        if question.evaluate("node => node === document.activeElement"):
            break
        page.keyboard.press("Tab")
    assert question.evaluate("node => node === document.activeElement")
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    answer = frame.locator(".cb-assistant .cb-answer").last
    expect(answer.locator("button.cb-cite")).to_have_count(2)
    cite = answer.locator("button.cb-cite").first
    for _ in range(60):
        if cite.evaluate("node => node === document.activeElement"):
            break
        page.keyboard.press("Tab")
    assert cite.evaluate("node => node === document.activeElement"), "citation not reachable by Tab"
    outline = cite.evaluate("node => getComputedStyle(node).outlineStyle")
    assert outline != "none", "focus is not visible"
    page.keyboard.press("Enter")
    panel = frame.locator('[data-cb="sources"]')
    expect(panel).to_be_focused()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(cite).to_be_focused()


def english_student() -> str:
    """Register an English-speaking student on the fake platform (the harness's student speaks German)."""
    fake_platform.add_user("studenten", "5", "Joan", "Whitfield", "joan@example.edu", "Learner", locale="en-GB")
    return "studenten"


def test_german_launch_shows_german_ui_and_decline_explains(launch: Callable[..., Any],
                                                            tool_frame: Callable[[Any], Any]) -> None:
    fake_platform.add_user("studentde2", "6", "Jörg", "Weiß", "joerg@example.edu", "Learner", locale="de-DE")
    page = launch("studentde2", framed=False)
    frame = tool_frame(page)
    expect(frame.locator("html")).to_have_attribute("lang", "de")
    expect(frame.locator('label[for="cb-question"]')).to_have_text("Ihre Frage")  # Sie: the default address
    chat_ready(frame, accept=False)
    expect(frame.locator('[data-cb="consent-accept"]')).to_have_text("Ich stimme zu")
    helpers.axe_clean(page, "consent notice")
    frame.locator('[data-cb="consent-decline"]').click()
    expect(frame.locator('[data-cb="unavailable-text"]')).to_contain_text("nicht zugestimmt")
    expect(frame.locator('[data-cb="form"]')).to_be_hidden()
    helpers.axe_clean(page, "declined")


def test_english_launch_shows_english_ui(launch: Callable[..., Any], tool_frame: Callable[[Any], Any]) -> None:
    frame = tool_frame(launch(english_student()))
    expect(frame.locator("html")).to_have_attribute("lang", "en")
    expect(frame.locator('label[for="cb-question"]')).to_have_text("Your question")
    chat_ready(frame, accept=False)
    expect(frame.locator('[data-cb="consent-accept"]')).to_have_text("I agree")


@pytest.mark.parametrize("width", [320])
def test_usable_at_320px(launch: Callable[..., Any], tool_frame: Callable[[Any], Any], width: int) -> None:
    page = launch("student", framed=False)
    page.set_viewport_size({"width": width, "height": 700})
    frame = tool_frame(page)
    chat_ready(frame)
    overflow = frame.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"horizontal scrolling at {width}px"
    expect(frame.locator('[data-cb="send"]')).to_be_visible()
    frame.locator('[data-cb="toggle-convs"]').click()
    expect(frame.locator('[data-cb="convs"]')).to_be_visible()


def test_axe_student_page_has_no_violations(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                            fake_model: Any) -> None:
    page = launch("student", framed=False)
    frame = tool_frame(page)
    chat_ready(frame)
    frame.locator('[data-cb="question"]').fill(QUESTION)
    frame.locator('[data-cb="send"]').click()
    expect(frame.locator(".cb-assistant .cb-tools, .cb-assistant .cb-error").first).to_be_visible()
    helpers.axe_clean(page, "student page with an answer")


def test_busy_position_then_stop_keeps_the_question(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                    tool_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = helpers.FakeModelServer("slowly " * 100, delay_s=0.2, status={"state": "queued", "position": 3},
                                     status_s=1.5)
    helpers.answer_through(monkeypatch, server.base_url)
    try:
        ensure_material(launch, tool_frame)
        frame = tool_frame(launch("student"))
        chat_ready(frame)
        frame.locator('[data-cb="question"]').fill("Photosynthesis: please explain it slowly")
        frame.locator('[data-cb="send"]').click()
        expect(frame.locator('[data-cb="status"]')).to_contain_text("3")  # "you are number 3" / "Nummer 3"
        expect(frame.locator(".cb-streaming").last).to_contain_text("slowly")
        frame.locator('[data-cb="stop"]').click()
        expect(frame.locator('[data-cb="stop"]')).to_be_hidden()
        expect(frame.locator('[data-cb="status"]')).to_have_text(re.compile("Answer stopped|Antwort angehalten"))
        deadline = time.monotonic() + 10
        stored = None
        while time.monotonic() < deadline:
            with tool_server.app.app_context():
                question = db.session.query(Message).filter_by(
                    role="user", text="Photosynthesis: please explain it slowly").order_by(Message.id.desc()).first()
                answer = db.session.query(Message).filter_by(reply_to_id=question.id).first() if question else None
                stored = (question is not None, answer.status if answer else None,
                          answer.error_code if answer else None)
            if stored[1] == "failed":
                break
            time.sleep(0.3)
        assert stored == (True, "failed", "cancelled")
    finally:
        server.stop()
        backends.forget_backends()
