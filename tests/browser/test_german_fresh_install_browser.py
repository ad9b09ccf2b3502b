"""A fresh installation (no settings: default embedding model, no language model) answers a German course.

Issue 13's acceptance: a German exam-information PDF, uploaded by a German-speaking teacher, is answered with the
right page for questions that carry an e-mail address, a greeting or a long preamble. The harness's tool runs on
``Config`` defaults, so the embedder is the default multilingual model and the answer is the extractive excerpt.
"""
from __future__ import annotations

import io
import re
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import expect

from course_bots.materials.course_index import get_embedder
from tests.browser import fake_platform

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = [
    ["Einführung in die Statistik – Organisatorisches",
     "Die Vorlesung findet montags von 10 bis 12 Uhr statt.",
     "Die Übungen beginnen in der zweiten Vorlesungswoche.",
     "Literatur: Fahrmeir, Statistik – Der Weg zur Datenanalyse."],
    ["Prüfungsinformationen",
     "Die Klausur findet am 12. Februar 2027 um 10 Uhr im Hörsaal H1 statt.",
     "Die Bearbeitungszeit beträgt 90 Minuten.",
     "Die Anmeldung zur Prüfung erfolgt bis zum 15. Januar über das Prüfungsamt.",
     "Erlaubte Hilfsmittel: ein handschriftlich beschriebenes DIN-A4-Blatt und ein Taschenrechner."],
    ["Sprechstunden und Kontakt",
     "Die Sprechstunde ist dienstags von 14 bis 15 Uhr in Raum 3.14.",
     "Fragen zu den Übungsblättern stellen Sie bitte im Forum des Kurses.",
     "Die Tutorien werden von studentischen Hilfskräften geleitet."],
]
FILENAME = "Klausurinfos Statistik.pdf"
QUESTIONS = {
    "e-mail": "Wann und wo findet die Klausur statt? Meine Mail ist anna.schmidt@uni-example.de, "
              "falls Sie Rückfragen haben.",
    "greeting": "Hallo zusammen, guten Tag! Wann und wo findet die Klausur statt?",
    "preamble": "Hallo, ich habe eine Frage zur Organisation des Kurses. Ich war in den letzten Wochen krank und "
                "konnte nicht an der Vorlesung teilnehmen, deshalb habe ich einiges verpasst. "
                "Wann und wo findet die Klausur statt?",
}


def german_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one page per list of lines, umlauts included (reportlab's standard fonts)."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for lines in pages:
        for row, line in enumerate(lines):
            pdf.setFont("Helvetica-Bold" if row == 0 else "Helvetica", 16 if row == 0 else 12)
            pdf.drawString(60, 760 - 24 * row, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@pytest.fixture
def german_course(platform_server: Any) -> Iterator[None]:
    """A course of its own (the other browser tests' materials stay out), with a German teacher and student."""
    state = platform_server.app.extensions["state"]
    saved = (state.context_id, state.context_title)
    state.context_id, state.context_title = "course-stat-de", "Einführung in die Statistik"
    fake_platform.add_user("lehrende_de", "21", "Tilda", "Lehrer", "tilda@example.edu", "Instructor", locale="de-DE")
    fake_platform.add_user("studi_de", "22", "Anna", "Schmidt", "anna.schmidt@uni-example.de", "Learner",
                           locale="de-DE")
    yield
    state.context_id, state.context_title = saved


def test_fresh_install_answers_german_questions_with_the_right_page(
        german_course: None, launch: Callable[..., Any], tool_frame: Callable[[Any], Any], tool_server: Any) -> None:

    teacher = launch("lehrende_de")
    frame = tool_frame(teacher)
    frame.locator("#tab-materials").click()
    frame.locator("#m-files").set_input_files(
        {"name": FILENAME, "mimeType": "application/pdf", "buffer": german_pdf(PAGES)})
    frame.locator("#cb-upload button[type=submit]").click()
    row = frame.locator("#cb-materials tr", has_text="Klausurinfos")
    expect(row.locator(".cb-mstatus")).to_have_text(re.compile("bereit|ready", re.I), timeout=300_000)

    student = launch("studi_de")
    chat = tool_frame(student)
    expect(chat.locator("html")).to_have_attribute("lang", "de")
    expect(chat.locator('[data-chat="cb"][data-ready="1"]')).to_have_count(1)
    consent = chat.locator('[data-cb="consent-accept"]')
    if consent.is_visible():
        consent.click()
    for number, (kind, question) in enumerate(QUESTIONS.items(), start=1):
        chat.locator('[data-cb="question"]').fill(question)
        chat.locator('[data-cb="send"]').click()
        answers = chat.locator(".cb-assistant .cb-answer")
        expect(answers).to_have_count(number, timeout=120_000)
        answer = answers.last
        cite = answer.locator("button.cb-cite").first
        expect(cite).to_be_visible(timeout=120_000)
        assert "12. Februar" in answer.inner_text(), f"{kind}: {answer.inner_text()}"
        cite.click()
        panel = chat.locator('[data-cb="sources"]')
        expect(panel).to_be_visible()
        expect(panel).to_contain_text("Klausurinfos")
        expect(panel).to_contain_text("Seite 2")
        expect(panel).not_to_contain_text("Seite 1,")
        student.keyboard.press("Escape")

    # A fresh install: the default embedding model (multilingual), not the tests' hashing fake.
    with tool_server.app.app_context():
        assert "multilingual-e5" in get_embedder().model_id
