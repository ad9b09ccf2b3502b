"""Teachers' test questions in Chromium, keyboard only: three questions (one taken from a student's logged question),
an upload, a sentence per question and a history line per run; German and English, axe without violations."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest
from playwright.sync_api import expect

from course_bots.evaluation.models import TestQuestion, TestRun
from lti_tool.extensions import db
from tests.browser import chat_helpers as helpers, fake_platform

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOGGED = "Wie entsteht ATP in den Mitochondrien?"
TOPICS = [
    ("Photosynthese", "Die Photosynthese in den Chloroplasten macht aus Licht, Wasser und Kohlendioxid Glukose."),
    ("Zellatmung", "Die Zellatmung in den Mitochondrien erzeugt ATP aus Glukose und Sauerstoff."),
    ("Mitose", "Die Mitose hat die Phasen Prophase, Metaphase, Anaphase und Telophase."),
    ("Osmose", "Bei der Osmose wandert Wasser durch eine semipermeable Membran zur hoeheren Konzentration."),
    ("Enzyme", "Enzyme sind Proteine, die die Aktivierungsenergie chemischer Reaktionen senken."),
    ("Genetik", "Mendel kreuzte Erbsen und fand dominante und rezessive Allele."),
    ("Immunsystem", "Antikoerper der B-Zellen binden Antigene; T-Zellen erkennen infizierte Zellen."),
    ("Oekologie", "Nahrungsnetze verbinden Produzenten, Konsumenten und Destruenten eines Oekosystems."),
]
MEIOSE = ("Meiose", "Die Meiose halbiert den Chromosomensatz; beim Crossing-over tauschen Chromosomen Abschnitte.")


def skript(topics: list[tuple[str, str]]) -> bytes:
    """One topic per page, a dozen lines each (enough text for a page of its own)."""
    return helpers.tiny_pdf([[f"Kapitel {n}: {title}"] + [f"{text} ({title}, Abschnitt {i})" for i in range(10)]
                             for n, (title, text) in enumerate(topics, start=1)])


@pytest.fixture
def settle_now(tool_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs become due at once after a change (the default waits 30 seconds for the change to settle)."""
    config = tool_server.app.extensions["coursebots.config"]
    monkeypatch.setitem(tool_server.app.extensions, "coursebots.config",
                        replace(config, test_questions_settle_seconds=0))


def upload_by_keyboard(page: Any, frame: Any, name: str, data: bytes, media_type: str) -> None:
    """Choose the file (the browser's own dialog stands in for set_input_files), Enter on the upload button, wait."""
    frame.locator("#tab-materials").focus()
    page.keyboard.press("Enter")
    frame.locator("#m-files").set_input_files({"name": name, "mimeType": media_type, "buffer": data})
    frame.locator("#cb-upload button[type=submit]").focus()
    with page.expect_response(lambda r: r.url.endswith("/materials") and r.request.method == "POST"):
        page.keyboard.press("Enter")
    frame.locator("#tab-materials").focus()  # the list again, with the new file
    page.keyboard.press("Enter")
    rows = frame.locator("#cb-materials tr", has_text=name)
    expect(rows.first).to_be_visible()
    busy = re.compile("wartet|gelesen|indiziert|hochgeladen|queued|parsing|embedding|uploading|reading", re.I)
    expect(rows.locator(".cb-mstatus", has_text=busy)).to_have_count(0, timeout=180_000)


def forget_test_questions(tool_server: Any) -> None:
    """Start from a course without test questions (the browser tests share one course)."""
    with tool_server.app.app_context():
        db.session.query(TestRun).delete()
        db.session.query(TestQuestion).delete()
        db.session.commit()


def add_question(page: Any, frame: Any, text: str | None, file_prefix: str, page_number: str) -> None:
    """Type the question (unless prefilled), pick the file by typing its name, the page, and Enter."""
    if text is not None:
        frame.locator("#tq-question").focus()
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    expect(frame.locator("#tq-file")).to_be_focused()
    page.keyboard.type(file_prefix)
    expect(frame.locator("#tq-file")).to_have_value(re.compile("^" + re.escape(file_prefix)))
    page.keyboard.press("Tab")
    expect(frame.locator("#tq-page")).to_be_focused()
    page.keyboard.type(page_number)
    page.keyboard.press("Enter")
    expect(frame.locator("#tq-question")).to_be_focused()


def test_german_teacher_adds_test_questions_and_sees_each_run(launch: Callable[..., Any],
                                                              tool_frame: Callable[[Any], Any], tool_server: Any,
                                                              settle_now: None,
                                                              screenshot: Callable[..., Path]) -> None:
    fake_platform.add_user("testlehrerin", "17", "Lea", "Lehmann", "lea@example.edu", "Instructor", locale="de-DE")
    page = launch("testlehrerin", framed=False)
    frame = tool_frame(page)
    expect(frame.locator("#tab-tests")).to_have_text("Testfragen")
    helpers.seed_questions(tool_server, LOGGED, prefix="tq", locale="de")  # stored scrubbed, as always
    forget_test_questions(tool_server)
    upload_by_keyboard(page, frame, "skript.pdf", skript(TOPICS), "application/pdf")

    # 1: from a student's logged question (the stored, scrubbed text; labelled, no link to the student)
    frame.locator("#tab-logs").focus()
    page.keyboard.press("Enter")
    item = frame.locator(".cb-log-item", has_text=LOGGED).first
    take = item.get_by_role("button", name="Als Testfrage übernehmen")
    take.focus()
    page.keyboard.press("Enter")
    expect(frame.locator("#panel-tests")).to_be_visible()
    expect(frame.locator("#tq-question")).to_have_value(LOGGED)
    expect(frame.locator("#tq-source-note")).to_be_visible()
    add_question(page, frame, None, "skript", "2")
    # 2 and 3: typed by the teacher; the third asks about what the script does not cover yet
    add_question(page, frame, "Welche Phasen hat die Mitose?", "skript", "3")
    add_question(page, frame, "Was passiert bei der Meiose beim Crossing-over?", "skript", "7")

    results = frame.locator("#tq-list li")
    expect(results).to_have_count(3)
    expect(frame.locator("#tq-state")).to_contain_text("Zuletzt geprüft", timeout=60_000)
    expect(results.nth(0)).to_contain_text("aus einer Frage von Studierenden")
    expect(results.nth(0)).to_contain_text(
        "Gefunden: Seite 2 von skript.pdf ist die beste Quelle – der Assistent würde antworten.")
    expect(results.nth(1)).to_contain_text(
        "Gefunden: Seite 3 von skript.pdf ist die beste Quelle – der Assistent würde antworten.")
    expect(results.nth(2)).to_contain_text(
        "Nicht gefunden: skript.pdf Seite 7 ist nicht unter den ersten fünf Treffern")
    history = frame.locator("#tq-history li")
    expect(history.first).to_contain_text("2 von 3 Fragen finden ihre Seite")
    helpers.axe_clean(page, "Testfragen")

    # A new version of the script covers the third question on page 7: the results and the history follow.
    upload_by_keyboard(page, frame, "skript.pdf", skript(TOPICS[:6] + [MEIOSE] + TOPICS[7:]), "application/pdf")
    frame.locator("#tab-tests").focus()
    page.keyboard.press("Enter")
    expect(history.first).to_contain_text("3 von 3 Fragen finden ihre Seite (vorher 2)", timeout=60_000)
    expect(history.first).to_contain_text("nach einer Änderung an den Materialien, besser")
    expect(results.nth(2)).to_contain_text("Gefunden: Seite 7 von skript.pdf")
    # one line per run (with no settle delay, each added question and each index change of the upload gave one)
    expect(history.last).to_contain_text("– erste Prüfung.")
    expect(history.filter(has_text=re.compile(r": 2 von 3 Fragen finden ihre Seite"))).not_to_have_count(0)
    helpers.axe_clean(page, "Testfragen nach dem Hochladen")
    screenshot(page, SCREENSHOTS / "teacher-test-questions.png")


def test_english_teacher_reads_the_same_results(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                settle_now: None) -> None:
    page = launch("teacher", framed=False)
    frame = tool_frame(page)
    expect(frame.locator("#s-prompt")).not_to_have_value("")
    upload_by_keyboard(page, frame, "skript.pdf", skript(TOPICS), "application/pdf")  # unchanged if already there
    frame.locator("#tab-tests").focus()
    page.keyboard.press("Enter")
    expect(frame.locator("#tab-tests")).to_have_text("Test questions")
    add_question(page, frame, "Which phases does mitosis have?", "skript", "3")
    expect(frame.locator("#cb-teacher-status")).to_have_text("Test question added. Its result appears after the "
                                                             "next check.")
    mitosis = frame.locator("#tq-list li", has_text="Which phases does mitosis have?")
    expect(mitosis).to_contain_text(re.compile(r"Found: page 3 of skript\.pdf (is the best source|is hit number \d)"
                                               r" – the assistant would (answer|refuse)\."), timeout=60_000)
    expect(frame.locator("#tq-history li").first).to_contain_text(re.compile(r"\d of \d questions find their page"))
    helpers.axe_clean(page, "Test questions")
