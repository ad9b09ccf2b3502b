"""The teacher workspace in Chromium: tabs by keyboard, axe on every tab, preview, and the XSS corpus end to end."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import expect

from course_bots import backends
from course_bots.chat import api as chat_api, operations as chat_operations
from course_bots.chat.models import ChatSession
from lti_tool.extensions import db
from tests.browser import chat_helpers as helpers, fake_platform

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TABS = ["settings", "materials", "preview", "logs", "faq", "tests", "semester", "delete"]
XSS_TEXT = " ".join(helpers.XSS_PAYLOADS)
# The teacher's prompt carries the payloads one word apart, each shorter than the echo guard's 40-character window:
# the scripted model echoes the corpus, and an echo of a 40-character run of the prompt is rightly withheld as a leak
# of the teacher's instructions (tests/test_course_bots/test_chat/test_prompt_echo.py), which is not this test's point.
PROMPT_XSS = " und ".join(p for p in helpers.XSS_PAYLOADS if len(re.sub(r"[\W_]", "", p)) < 40)


def model_with(monkeypatch: pytest.MonkeyPatch, answer: str) -> Any:
    """Answer through a fake OpenAI-compatible server with this scripted text."""
    server = helpers.FakeModelServer(answer, delay_s=0.01)
    helpers.answer_through(monkeypatch, server.base_url)
    return server


@pytest.fixture
def xss_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A model whose answer is the whole XSS corpus (and a citation)."""
    server = model_with(monkeypatch, "Photosynthesis [1]. " + XSS_TEXT)
    yield server
    server.stop()
    backends.forget_backends()


def test_tabs_by_keyboard_and_axe_on_every_tab(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                               screenshot: Callable[..., Path]) -> None:
    page = launch("teacher", framed=False)
    frame = tool_frame(page)
    expect(frame.locator("#s-prompt")).not_to_have_value("")
    frame.locator("#tab-settings").focus()
    for index, name in enumerate(TABS):
        if index:
            page.keyboard.press("ArrowRight")
        expect(frame.locator(f"#tab-{name}")).to_be_focused()
        expect(frame.locator(f"#panel-{name}")).to_be_visible()
        frame.wait_for_timeout(400)  # the tab's data arrives
        helpers.axe_clean(page, f"tab {name}")
        if name in ("settings", "logs"):
            screenshot(page, SCREENSHOTS / f"teacher-{name}.png")
    page.keyboard.press("Home")
    expect(frame.locator("#tab-settings")).to_be_focused()


def test_teaching_mode_fills_prompt_and_history_restores(launch: Callable[..., Any],
                                                         tool_frame: Callable[[Any], Any]) -> None:
    frame = tool_frame(launch("teacher"))
    prompt = frame.locator("#s-prompt")
    expect(prompt).not_to_have_value("")
    frame.locator("#s-mode").select_option("exam")
    expect(prompt).to_have_value("You help students prepare for the exam of this course. Explain key concepts, ask "
                                 "short practice questions about the materials, give feedback on the student's "
                                 "answers and point out which parts of the materials to revise.")
    prompt.fill("Version A")
    frame.locator("#cb-settings button[type=submit]").click()
    expect(frame.locator("#cb-versions li").first).to_contain_text("Version A")
    prompt.fill("Version B")
    frame.locator("#cb-settings button[type=submit]").click()
    expect(frame.locator("#cb-versions li").first).to_contain_text("Version B")
    frame.locator("#cb-versions li").nth(1).get_by_role("button", name="Restore").click()
    expect(prompt).to_have_value("Version A")


def test_preview_chats_as_a_student_without_counting(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                     tool_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = model_with(monkeypatch, "Light energy becomes chemical energy [1].")
    try:
        helpers.ensure_material(launch, tool_frame)
        page = launch("teacher")
        frame = tool_frame(page)
        frame.locator("#tab-preview").click()
        frame.locator("#cb-preview-start").click()
        expect(frame.locator("#pv-question")).to_be_focused()
        frame.locator("#pv-question").fill("What does photosynthesis convert?")
        page.keyboard.press("Enter")
        expect(frame.locator('[data-chat="pv"] .cb-assistant button.cb-cite')).to_have_count(1)
        with tool_server.app.app_context():
            previews = db.session.query(ChatSession).filter_by(preview=True).count()
        assert previews >= 1
    finally:
        server.stop()
        backends.forget_backends()


def install_detector(frame: Any) -> None:
    """Start watching the tool's document for script that runs or active content that was injected."""
    frame.evaluate(helpers.XSS_DETECTOR)


def run_corpus(launch: Callable[..., Any], tool_frame: Callable[[Any], Any], tool_server: Any) -> list[str]:
    """Push the corpus through teacher texts, a file name, model output and feedback; return detector hits."""
    helpers.ensure_material(launch, tool_frame)
    teacher = launch("teacher")
    frame = tool_frame(teacher)
    expect(frame.locator("#s-prompt")).not_to_have_value("")
    frame.locator("#s-welcome").fill(XSS_TEXT)
    frame.locator("#s-name").fill(helpers.XSS_PAYLOADS[1][:100])
    frame.locator("#s-prompt").fill(helpers.TEACHER_PROMPT + "\n" + PROMPT_XSS)
    frame.locator("#cb-settings button[type=submit]").click()
    expect(frame.locator("#cb-teacher-status")).to_have_text("Settings saved.")
    frame.locator("#tab-materials").click()
    frame.locator("#m-files").set_input_files({"name": "<img src=x onerror=__cbXssHit('file')>.md",
                                               "mimeType": "text/markdown",
                                               "buffer": ("# Notes\n\n" + XSS_TEXT).encode()})
    frame.locator("#cb-upload button[type=submit]").click()
    expect(frame.locator("#cb-materials tr", has_text="onerror")).to_have_count(1)
    install_detector(frame)
    hits = frame.evaluate("() => window.__cbScan()")

    student = launch("student")
    sframe = tool_frame(student)
    helpers.chat_ready(sframe)
    install_detector(sframe)
    sframe.locator('[data-cb="question"]').fill("Photosynthesis? " + helpers.XSS_PAYLOADS[1])
    sframe.locator('[data-cb="send"]').click()
    answer = sframe.locator(".cb-assistant").last
    expect(answer.locator(".cb-tools, .cb-error").first).to_be_visible()
    expect(answer.locator(".cb-answer")).to_contain_text("__cbXssHit('svg')")  # the corpus arrived, as text
    expect(sframe.locator('[data-cb="welcome"]')).to_contain_text("__cbXssHit('img')")
    answer.get_by_role("button", name="Not helpful").or_(answer.get_by_role("button", name="Nicht hilfreich")).click()
    answer.locator(".cb-feedback textarea").fill(XSS_TEXT)
    answer.locator(".cb-feedback button[type=submit]").click()
    expect(answer.locator(".cb-feedback")).to_be_hidden()
    cite = answer.locator("button.cb-cite")
    if cite.count():
        cite.first.click()
        expect(sframe.locator('[data-cb="sources"]')).to_be_visible()
    sframe.locator(".cb-answer").last.hover()
    hits += sframe.evaluate("() => window.__cbScan()")

    helpers.seed_questions(tool_server, "What is photosynthesis?")
    teacher = launch("teacher")
    frame = tool_frame(teacher)
    install_detector(frame)
    frame.locator("#tab-logs").click()
    expect(frame.locator("#cb-logs-open")).to_be_visible()
    expect(frame.locator("#cb-logs")).to_contain_text("onerror")  # the feedback comment is shown, as text
    frame.locator("#tab-materials").click()
    frame.wait_for_timeout(300)
    hits += frame.evaluate("() => window.__cbScan()")
    return hits


def test_xss_corpus_never_runs(launch: Callable[..., Any], tool_frame: Callable[[Any], Any], tool_server: Any,
                               xss_model: Any) -> None:
    hits = run_corpus(launch, tool_frame, tool_server)
    assert hits == []


def test_control_detector_fires_without_sanitizing(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                   xss_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def unsafe(text: str, citations: Any = None) -> str:
        return text  # sanitizing switched off: model text goes out as HTML

    monkeypatch.setattr(chat_operations, "render_markdown", unsafe)
    monkeypatch.setattr(chat_api, "render_markdown", unsafe)
    helpers.ensure_material(launch, tool_frame)
    student = launch("student")
    frame = tool_frame(student)
    helpers.chat_ready(frame)
    install_detector(frame)
    frame.locator('[data-cb="question"]').fill("What does photosynthesis convert?")
    frame.locator('[data-cb="send"]').click()
    expect(frame.locator(".cb-assistant .cb-tools").last).to_be_visible()
    frame.wait_for_timeout(300)
    hits = frame.evaluate("() => window.__cbScan()")
    assert any(hit.startswith(("attr:", "tag:", "url:", "csp:")) for hit in hits), hits


def test_german_teacher_workspace_at_320px(launch: Callable[..., Any], tool_frame: Callable[[Any], Any]) -> None:
    fake_platform.add_user("teacherde", "7", "Greta", "Lehmann", "greta@example.edu", "Instructor", locale="de-DE")
    page = launch("teacherde", framed=False)
    page.set_viewport_size({"width": 320, "height": 800})
    frame = tool_frame(page)
    expect(frame.locator("html")).to_have_attribute("lang", "de")
    expect(frame.locator("#tab-settings")).to_have_text("Einstellungen")
    expect(frame.locator('label[for="s-prompt"]')).to_have_text("Anweisungen für den Assistenten (System-Prompt)")
    expect(frame.locator("#s-prompt")).not_to_have_value("")
    frame.locator("#s-mode").select_option("faq")  # templates fill the prompt in the teacher's language
    expect(frame.locator("#s-prompt")).to_have_value(re.compile("^Du beantwortest organisatorische"))
    for name in TABS:
        frame.locator(f"#tab-{name}").click()
        overflow = frame.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"tab {name} scrolls sideways at 320 px"


def test_logs_chart_export_and_correction_becomes_faq(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                      tool_server: Any) -> None:
    page = launch("teacher", framed=False)
    frame = tool_frame(page)
    helpers.seed_questions(tool_server, "What is photosynthesis?")  # after the launch, which creates the course's bot
    frame.locator("#tab-logs").click()
    expect(frame.locator("#cb-logs-open")).to_be_visible()
    expect(frame.locator("#cb-chart svg[role=img] rect").first).to_be_attached()  # questions per day
    frame.locator("#l-role").select_option("instructor")
    expect(frame.locator(".cb-log-item", has_text="What is photosynthesis?")).to_have_count(0)
    frame.locator("#l-role").select_option("learner")
    expect(frame.locator(".cb-log-item", has_text="What is photosynthesis?").first).to_be_visible()
    with page.expect_download() as download_info:
        frame.locator('[data-export="csv"]').click()
    assert download_info.value.suggested_filename.endswith(".csv")
    item = frame.locator(".cb-log-item", has_text="What is photosynthesis?").first
    item.get_by_role("button", name="Write the right answer").click()
    expect(frame.locator("#f-answer")).to_be_focused()
    expect(frame.locator("#f-question")).to_have_value("What is photosynthesis?")
    frame.locator("#f-answer").fill("Plants turn light into chemical energy (see lecture 1).")
    frame.locator("#cb-faq-form button[type=submit]").click()
    expect(frame.locator("#cb-faq")).to_contain_text("Plants turn light into chemical energy")
