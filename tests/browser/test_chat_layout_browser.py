"""The student chat as a chat: pinned input, Enter/Shift+Enter, code blocks from slides, folding sidebar, stop and
try again, nothing twice after leaving mid-answer, refusals that keep the text; German and English, 320 px and
desktop, keyboard only, axe. Also takes docs/screenshots/student-chat-{model,extractive}.png (--update-screenshots).
"""
from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from flask import jsonify
from playwright.sync_api import expect

from course_bots import backends
from course_bots.chat import operations, quota
from course_bots.chat.models import Message
from course_bots.materials import course_index
from lti_tool.extensions import db
from tests.browser import chat_helpers as helpers, fake_platform

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SLIDES = [["Kapitel 7: Iteratoren in Java"],
          ["Iteratoren: Elemente einer Sammlung durchlaufen",
           "Ein Iterator durchläuft eine Sammlung Element für Element; hasNext prüft, ob noch eines folgt.",
           "Iterator<String> nameIterator = names.iterator();",
           "while (nameIterator.hasNext()) {",
           "String name = nameIterator.next();",
           "System.out.println(name);",
           "}"],
          ["Iterator: Elemente entfernen",
           "Nur der Iterator selbst darf während des Durchlaufs Elemente entfernen: nameIterator.remove().",
           "Sonst wirft die Sammlung eine ConcurrentModificationException.",
           "Ein Aufruf von next ohne weiteres Element wirft eine NoSuchElementException."]]
MODEL_ANSWER = (
    "Ein **Iterator** durchläuft eine Sammlung Element für Element [1]. Mit `hasNext()` prüfen Sie, ob noch ein "
    "Element folgt, `next()` liefert es [1]:\n\n```java\nIterator<String> it = namen.iterator();\n"
    "while (it.hasNext()) {\n    String name = it.next();\n    System.out.println(name);\n}\n```\n\n"
    "Worauf Sie achten sollten:\n\n- `next()` ohne weiteres Element wirft eine `NoSuchElementException` [2].\n"
    "- Entfernen Sie Elemente während des Durchlaufs nur mit `it.remove()`, sonst folgt eine "
    "`ConcurrentModificationException` [2].")
LONG_ANSWER = " ".join(f"Absatz {n}: Die Photosynthese wandelt Lichtenergie in chemische Energie um [1].\n\n"
                       for n in range(40))


def user(name: str, locale: str, number: str) -> str:
    """A learner of the fake platform with their own pseudonym (their own conversations) and page language."""
    fake_platform.add_user(name, number, "Kim", "Lerner", f"{name}@example.edu", "Learner", locale=locale)
    return name


def ensure_slides(launch: Callable[..., Any], tool_frame: Callable[[Any], Any]) -> None:
    """As the teacher: the photosynthesis PDF (chat_helpers) and a Java slide deck with code on slide 2."""
    page = helpers.ensure_material(launch, tool_frame)
    frame = tool_frame(page)
    rows = frame.locator("#cb-materials tr", has_text="java-iteratoren.pdf")
    if rows.count() == 0:
        frame.locator("#m-files").set_input_files(
            {"name": "java-iteratoren.pdf", "mimeType": "application/pdf", "buffer": helpers.tiny_pdf(SLIDES)})
        frame.locator("#cb-upload button[type=submit]").click()
    expect(rows.locator(".cb-mstatus")).to_have_text("ready", timeout=180_000)
    page.context.close()


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``model(answer, **kw)``: the tool answers through a scripted OpenAI-compatible server on 127.0.0.1."""
    servers: list[Any] = []

    def start(answer: str, **kwargs: Any) -> Any:
        server = helpers.FakeModelServer(answer, **kwargs)
        servers.append(server)
        helpers.answer_through(monkeypatch, server.base_url)
        return server

    yield start
    for server in servers:
        server.stop()
    backends.forget_backends()


def open_chat(launch: Callable[..., Any], tool_frame: Callable[[Any], Any], name: str, width: int = 1280,
              height: int = 800, framed: bool = True) -> tuple[Any, Any]:
    """Launch ``name`` at ``width`` x ``height``, accept the notice; returns (page, tool frame)."""
    page = launch(name, framed=framed)
    page.set_viewport_size({"width": width, "height": height})
    frame = tool_frame(page)
    helpers.chat_ready(frame)
    return page, frame


def in_viewport(page: Any, frame: Any, selector: str) -> None:
    """The element's box lies inside the visible window (and inside the tool's frame when framed)."""
    box = frame.locator(selector).bounding_box()
    view = page.viewport_size
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= view["height"] + 1, (box, view)
    assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"] + 1, (box, view)
    if frame != page.main_frame:
        outer = page.locator("#contentframe").bounding_box()
        assert box["y"] + box["height"] <= outer["y"] + outer["height"] + 1, (box, outer)


def stored(tool_server: Any, text: str) -> list[tuple[int, str | None, str | None]]:
    """Every stored question with exactly ``text``: (conversation id, its answer's status, error code)."""
    with tool_server.app.app_context():
        rows = []
        for question in db.session.query(Message).filter_by(role="user", text=text).order_by(Message.id):
            answer = db.session.query(Message).filter_by(reply_to_id=question.id).first()
            rows.append((question.session_id, answer.status if answer else None,
                         answer.error_code if answer else None))
        db.session.remove()
        return rows


def wait_for(check: Callable[[], bool], seconds: float = 15) -> None:
    """Poll ``check`` until it holds (the server stores a cancelled answer after the stream is closed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    assert check()


@pytest.mark.parametrize("width,locale", [(1280, "de-DE"), (320, "de-DE"), (1280, "en-GB"), (320, "en-GB")])
def test_input_stays_in_view_and_enter_sends_shift_enter_breaks(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], model: Callable[..., Any], width: int,
        locale: str) -> None:
    helpers.ensure_material(launch, tool_frame).context.close()
    model(LONG_ANSWER, delay_s=0.002)
    name = user(f"layout{width}{locale[:2]}", locale, f"7{width}{locale[:2]}")
    page, frame = open_chat(launch, tool_frame, name, width=width, height=640)
    question = frame.locator('[data-cb="question"]')
    question.focus()  # keyboard only from here
    page.keyboard.type("Photosynthesis converts light energy: erste Zeile")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("zweite Zeile")
    # Shift+Enter broke the line
    expect(question).to_have_value("Photosynthesis converts light energy: erste Zeile\nzweite Zeile")
    grown = question.evaluate("node => node.getBoundingClientRect().height")
    page.keyboard.press("Enter")
    expect(question).to_have_value("")  # Enter sent it
    sent = frame.locator(".cb-user .cb-text").last
    expect(sent).to_have_text("Photosynthesis converts light energy: erste Zeile\nzweite Zeile")
    answer = frame.locator(".cb-assistant").last
    expect(answer.locator(".cb-tools")).to_be_visible(timeout=30_000)
    assert grown > question.evaluate("node => node.getBoundingClientRect().height"), "the input grew with the text"
    log_height = frame.locator('[data-cb="scroll"]').evaluate("node => node.scrollHeight - node.clientHeight")
    assert log_height > 200, "the long answer scrolls inside the conversation"
    in_viewport(page, frame, '[data-cb="question"]')
    in_viewport(page, frame, '[data-cb="send"]')
    in_viewport(page, frame, ".cb-assistant:last-child .cb-tools")  # the end of the latest answer is in view
    overflow = frame.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"horizontal scrolling at {width}px"
    announced = frame.locator('[data-cb="announce"]').text_content() or ""
    assert announced.count("Absatz 39") == 1, "the finished answer is announced once"
    assert frame.locator(".cb-streaming[aria-live], .cb-log[aria-live]").count() == 0, "streaming text is not live"
    helpers.axe_clean(frame, f"long answer at {width}px {locale}")


def test_code_from_a_slide_stays_a_code_block_with_copy_button(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], screenshot: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_slides(launch, tool_frame)
    course_index._search_ready = False  # as after a cold start: the first question tells that the assistant gets ready
    search = operations.default_search

    def slow_search(bot_id: int, query: str, k: int) -> Any:
        time.sleep(1.5)  # the embedding model loading
        return search(bot_id, query, k)

    monkeypatch.setattr(operations, "default_search", slow_search)
    page, frame = open_chat(launch, tool_frame, user("extraktiv", "de-DE", "71"), height=900)
    frame.locator('[data-cb="question"]').fill("Wie funktioniert der Iterator mit hasNext und next?")
    frame.locator('[data-cb="question"]').press("Enter")
    expect(frame.locator('[data-cb="status"]')).to_contain_text("Der Assistent wird vorbereitet")
    answer = frame.locator(".cb-assistant .cb-answer").last
    code = answer.locator("pre code").first
    expect(code).to_contain_text("while (nameIterator.hasNext()) {", timeout=30_000)
    text = code.text_content() or ""
    assert "names.iterator();\nwhile (nameIterator.hasNext()) {\n" in text, text  # its line breaks kept
    expect(answer.locator("h3").first).to_contain_text(re.compile(r"java-iteratoren\.pdf, Seite \d"))
    copy = answer.locator(".cb-code-block .cb-copy-code").first
    expect(copy).to_have_text("Code kopieren")
    copy.focus()
    page.keyboard.press("Enter")
    expect(frame.locator('[data-cb="status"]')).to_have_text("Code kopiert.")
    cite = answer.locator("h3 button.cb-cite").first
    cite.focus()
    page.keyboard.press("Enter")
    panel = frame.locator('[data-cb="sources"]')
    expect(panel).to_be_focused()
    current = panel.locator(".cb-source.cb-current")
    expect(current.locator(".cb-where")).to_have_text(re.compile(r"— Seite \d"))  # German, like the heading
    heading = answer.locator("h3").first.text_content() or ""
    page_number = re.search(r"Seite (\d+)", heading)
    assert page_number and (current.locator(".cb-where").text_content() or "").endswith(page_number.group(1))
    expect(current.locator("blockquote pre code").first).to_contain_text("while (nameIterator.hasNext()) {")
    helpers.axe_clean(frame, "extractive answer with code and sources")
    page.keyboard.press("Escape")
    expect(cite).to_be_focused()
    frame.locator('[data-cb="scroll"]').evaluate("node => { node.scrollTop = 0; }")  # the picture: from the question
    screenshot(page, SCREENSHOTS / "student-chat-extractive.png", full_page=False)


def test_model_answer_streams_german_with_code_and_citations(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], model: Callable[..., Any],
        screenshot: Callable[..., Path]) -> None:
    ensure_slides(launch, tool_frame)
    server = model(MODEL_ANSWER, delay_s=0.03)
    page, frame = open_chat(launch, tool_frame, user("modell", "de-DE", "72"), height=900)
    frame.locator('[data-cb="question"]').fill("Wie durchlaufe ich eine Liste mit einem Iterator und hasNext?")
    frame.locator('[data-cb="question"]').press("Enter")
    expect(frame.locator(".cb-streaming").last).to_contain_text("Iterator")  # streamed as text first
    answer = frame.locator(".cb-assistant .cb-answer").last
    expect(answer.locator("pre code")).to_contain_text("    String name = it.next();", timeout=30_000)
    expect(answer.locator("ul li")).to_have_count(2)  # lists stay lists
    expect(answer.locator(".cb-copy-code")).to_have_count(1)
    assert answer.locator("button.cb-cite").count() >= 3
    assert "Iterator" in server.requests[-1]["messages"][-1]["content"]
    answer.locator("button.cb-cite").first.click()
    where = frame.locator('[data-cb="sources"] .cb-current .cb-where')
    expect(where).to_have_text(re.compile(r"— (Seite|Seiten) \d"))
    helpers.axe_clean(frame, "model answer")
    screenshot(page, SCREENSHOTS / "student-chat-model.png", full_page=False)


@pytest.mark.parametrize("locale", ["de-DE", "en-GB"])
def test_sidebar_is_compact_and_folds_at_320px(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                               locale: str) -> None:
    helpers.ensure_material(launch, tool_frame).context.close()
    name = user(f"sidebar{locale[:2]}", locale, f"73{locale[:2]}")
    page, frame = open_chat(launch, tool_frame, name)
    long_question = ("Eine sehr lange Frage zur Photosynthese, die im Verlauf niemals in eine einzige Zeile passen "
                     "würde, weil sie so lang ist " + "x" * 20)
    frame.locator('[data-cb="question"]').fill(long_question)
    frame.locator('[data-cb="question"]').press("Enter")
    expect(frame.locator(".cb-assistant .cb-tools, .cb-assistant .cb-error").first).to_be_visible(timeout=30_000)
    item = frame.locator('[data-cb="conv-list"] li').first
    expect(item.locator('button[aria-current="true"]')).to_have_count(1)  # the current one is marked
    line = item.locator(".cb-conv").evaluate("n => parseFloat(getComputedStyle(n).lineHeight) || 24")
    assert item.locator(".cb-conv").evaluate("n => n.getBoundingClientRect().height") < 2 * line, "one line"
    assert item.locator(".cb-conv").evaluate("n => n.scrollWidth > n.clientWidth"), "truncated"
    expect(frame.locator('[data-cb="toggle-convs"]')).to_be_hidden()  # desktop: the sidebar stays open
    page.set_viewport_size({"width": 320, "height": 640})
    convs = frame.locator('[data-cb="convs"]')
    toggle = frame.locator('[data-cb="toggle-convs"]')
    expect(convs).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(convs).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(toggle).to_have_text("Unterhaltungen ausblenden" if locale == "de-DE" else "Hide conversations")
    helpers.axe_clean(frame, "sidebar open at 320px")
    page.keyboard.press("Enter")
    expect(convs).to_be_hidden()
    toggle.click()
    frame.locator('[data-cb="conv-list"] .cb-conv').first.click()
    expect(convs).to_be_hidden()  # choosing a conversation folds the sidebar away again
    expect(frame.locator(".cb-user")).to_have_count(1)
    overflow = frame.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


def test_stop_then_try_again_stores_the_question_once(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], model: Callable[..., Any],
        tool_server: Any) -> None:
    helpers.ensure_material(launch, tool_frame).context.close()
    model("langsam " * 60, delay_s=0.15)
    text = f"Photosynthesis converts light energy into chemical energy, slowly please {uuid.uuid4().hex[:4]}"
    page, frame = open_chat(launch, tool_frame, user("stopper", "de-DE", "74"))
    frame.locator('[data-cb="question"]').fill(text)
    frame.locator('[data-cb="question"]').press("Enter")
    expect(frame.locator(".cb-streaming").last).to_contain_text("langsam")
    stop = frame.locator('[data-cb="stop"]')
    stop.focus()
    page.keyboard.press("Enter")
    expect(stop).to_be_hidden()
    expect(frame.locator('[data-cb="status"]')).to_have_text("Antwort angehalten.")
    wait_for(lambda: stored(tool_server, text) != [] and stored(tool_server, text)[0][1] == "failed")
    assert [row[1:] for row in stored(tool_server, text)] == [("failed", "cancelled")]
    model("Die Photosynthese findet in den Chloroplasten statt [1].", delay_s=0.01)
    retry = frame.locator(".cb-assistant").last.get_by_role("button", name="Erneut versuchen")
    retry.focus()
    page.keyboard.press("Enter")
    expect(frame.locator(".cb-assistant .cb-answer").last).to_contain_text("Chloroplasten", timeout=30_000)
    expect(frame.locator(".cb-user")).to_have_count(1)
    wait_for(lambda: [row[1:] for row in stored(tool_server, text)] == [("ok", None)])
    helpers.axe_clean(frame, "after try again")


def test_leaving_mid_answer_leaves_no_duplicate(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                model: Callable[..., Any], tool_server: Any) -> None:
    helpers.ensure_material(launch, tool_frame).context.close()
    model("Photosynthese " * 80, delay_s=0.2, status={"state": "warming_up"}, status_s=1.0)
    text = f"Photosynthesis converts light energy into chemical energy in the chloroplasts? {uuid.uuid4().hex[:4]}"
    name = user("verlasser", "de-DE", "75")
    page, frame = open_chat(launch, tool_frame, name)
    frame.locator('[data-cb="question"]').fill(text)
    frame.locator('[data-cb="question"]').press("Enter")
    expect(frame.locator('[data-cb="status"]')).to_contain_text("gestartet")  # the model server is warming up
    page.context.close()  # the student closes the frame while the answer is being prepared
    wait_for(lambda: [row[1:] for row in stored(tool_server, text)] == [("failed", "cancelled")])
    page, frame = open_chat(launch, tool_frame, name)
    listed = frame.locator('[data-cb="conv-list"] .cb-conv', has_text=text[:30])
    expect(listed).to_have_count(1)
    listed.click()
    expect(frame.locator(".cb-user")).to_have_count(1)
    assistant = frame.locator(".cb-assistant").last
    expect(assistant.locator(".cb-error")).to_have_text("Nicht beantwortet: Die Antwort wurde unterbrochen.")
    helpers.axe_clean(frame, "unanswered question after leaving")
    # Asking the same question again (typed anew) answers the stored one instead of storing it twice.
    model("Die Photosynthese findet in den Chloroplasten statt [1].", delay_s=0.01)
    frame.locator('[data-cb="new"]').click()
    frame.locator('[data-cb="question"]').fill(text)
    frame.locator('[data-cb="question"]').press("Enter")
    expect(frame.locator(".cb-assistant .cb-answer").last).to_contain_text("Chloroplasten", timeout=30_000)
    wait_for(lambda: [row[1:] for row in stored(tool_server, text)] == [("ok", None)])
    expect(frame.locator('[data-cb="conv-list"] .cb-conv', has_text=text[:30])).to_have_count(1)


@pytest.mark.parametrize("locale", ["de-DE", "en-GB"])
def test_a_refused_question_keeps_its_text(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                           monkeypatch: pytest.MonkeyPatch, locale: str) -> None:
    message = {"de-DE": "Sie haben heute bereits 20 Fragen gestellt.", "en-GB": "You have asked 20 questions today."}
    decision = type("Decision", (), {"allowed": False, "code": "quota_exceeded", "message": message[locale],
                                     "retry_after_s": 3600, "resets_at": "2026-12-03T00:00:00Z"})()

    def refusal(found: Any) -> Any:
        response = jsonify({"error": {"code": found.code, "message": found.message,
                                      "retry_after_s": found.retry_after_s, "resets_at": found.resets_at}})
        response.status_code = 429
        return response

    monkeypatch.setattr(quota, "check_quota", lambda *args, **kwargs: decision)
    if hasattr(quota, "refusal"):
        monkeypatch.setattr(quota, "refusal", refusal)
    page, frame = open_chat(launch, tool_frame, user(f"quota{locale[:2]}", locale, f"76{locale[:2]}"), width=320,
                            height=640)
    question = frame.locator('[data-cb="question"]')
    question.fill("Noch eine Frage zur Photosynthese")
    question.press("Enter")
    expect(frame.locator('[data-cb="refused"]')).to_have_text(message[locale])
    expect(question).to_have_value("Noch eine Frage zur Photosynthese")
    expect(frame.locator(".cb-user")).to_have_count(0)
    in_viewport(page, frame, '[data-cb="refused"]')
    helpers.axe_clean(frame, "refused question")
