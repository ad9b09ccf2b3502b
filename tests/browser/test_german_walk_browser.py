"""Every page, tab and state in German (Sie and du) and English: no sentence in the other language, one address.

German teacher, student and administrator launch through the fake platform. The walk visits every tab it finds
(tabs added later are walked too) and every chat state reached through the real flows: consent, declined,
empty, answering, answered, a model server that is down, a quota that is used up; plus a material that failed
to load (a password-protected PDF). At each stop it collects the frame's visible text and accessible labels, and
fails on any sentence in the other language (hard-coded strings included) and, in German, on the form of address
that is not configured. Keyboard only; axe finds nothing; 320 px and desktop. ``COURSEBOTS_WALK_DUMP=<file>``
writes every stop's words to a file (one JSON line per stop) for reviewing the wording.
"""
from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import time
from typing import Any, Callable, Iterator

import pytest
from playwright.sync_api import expect

from course_bots import backends
from tests.browser import chat_helpers as helpers
from tests.browser import visible_text as visible

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 800}
ANSWERS = {"de": "Die Photosynthese wandelt Lichtenergie in chemische Energie um, und zwar in den Chloroplasten [1]. "
                 "Sie braucht dafür Wasser und Kohlendioxid [1].",
           "en": "Photosynthesis converts light energy into chemical energy in the chloroplasts [1]. "
                 "It needs water and carbon dioxide [1]."}
QUESTIONS = {"de": "Wo findet die Photosynthese statt?", "en": "Where does photosynthesis take place?"}
LOCKED_PDF = "2026-04.pdf"
# The course's English material (tests/browser/chat_helpers.py): quoted excerpts are the teacher's words.
MATERIAL_WORDS = frozenset(w.lower() for page in helpers.DOC_PAGES for line in page
                           for w in visible.WORD.findall(line))
_ids = itertools.count(1)
WALKS = [("de", "sie", DESKTOP), ("de", "du", NARROW), ("en", "sie", NARROW), ("en", "sie", DESKTOP)]
WALK_IDS = ["de-Sie-desktop", "de-du-320px", "en-320px", "en-desktop"]


class Walk:
    """Collects what is wrong at each stop, so that one run reports every English sentence at once."""

    def __init__(self, page: Any, frame: Any, lang: str, address: str, ignore: tuple[str, ...]) -> None:
        self.page, self.frame, self.lang, self.address, self.ignore = page, frame, lang, address, ignore
        self.problems: list[str] = []
        self.stops: list[str] = []

    def check(self, where: str) -> None:
        """Check the frame's visible words here, and run axe."""
        from axe_playwright_python.sync_playwright import Axe

        self.frame.wait_for_timeout(300)
        texts = visible.visible_texts(self.frame, self.lang)
        self.stops.append(where)
        if os.environ.get("COURSEBOTS_WALK_DUMP"):  # a file to read every stop's words from (reviewing wording)
            with open(os.environ["COURSEBOTS_WALK_DUMP"], "a", encoding="utf-8") as dump:
                dump.write(json.dumps({"where": where, "texts": texts}, ensure_ascii=False) + "\n")
        for sentence in visible.foreign_sentences(texts, self.lang, self.ignore, MATERIAL_WORDS):
            self.problems.append(f"{where}: not {self.lang}: {sentence!r}")
        if self.lang == "de":
            for sentence in visible.address_violations(texts, self.address):
                self.problems.append(f"{where}: not '{self.address}': {sentence!r}")
        results = Axe().run(self.page)
        if results.violations_count:
            self.problems.append(f"{where}: axe: " + results.generate_report())
        width = self.frame.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if width > 1:
            self.problems.append(f"{where}: scrolls sideways by {width}px")

    def assert_clean(self) -> None:
        """Fail with every problem found on the walk."""
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def address(request: pytest.FixtureRequest, tool_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The installation's German form of address for this walk (COURSEBOTS_GERMAN_ADDRESS)."""
    chosen = str(request.param)
    config = tool_server.app.extensions["coursebots.config"]
    monkeypatch.setitem(tool_server.app.extensions, "coursebots.config",
                        dataclasses.replace(config, german_address=chosen))
    return chosen


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``model(answer)`` answers through a fake model server; ``model(None)``: the model server is down."""
    servers: list[Any] = []

    def use(answer: str | None, delay_s: float = 0.05) -> None:
        if answer is None:
            base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
        else:
            servers.append(helpers.FakeModelServer(answer, delay_s=delay_s))
            base_url = servers[-1].base_url
        helpers.answer_through(monkeypatch, base_url, label="Hochschulmodell", timeout_s=3.0)

    yield use
    for server in servers:
        server.stop()
    backends.forget_backends()


def _user(platform_module: Any, monkeypatch: pytest.MonkeyPatch, role: str, lang: str) -> str:
    """A fresh platform user of this role and language (a new student sees the consent notice)."""
    number = f"7{next(_ids)}{int(time.time() * 1000) % 100000}"
    roles = {"student": (platform_module.MEMBERSHIP + "Learner",),
             "teacher": (platform_module.MEMBERSHIP + "Instructor",),
             "admin": (platform_module.INSTITUTION + "Administrator", platform_module.MEMBERSHIP + "Instructor")}[role]
    locale = "de-DE" if lang == "de" else "en-GB"
    user = platform_module.User(number, "Alex", "Muster", f"alex{number}@example.edu", roles, locale=locale)
    key = f"walk-{role}-{number}"
    monkeypatch.setitem(platform_module.USERS, key, user)
    return key


def _locked_pdf() -> bytes:
    """A password-protected PDF (the loader refuses it: a failed material with its reason)."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, encrypt="geheim")
    pdf.drawString(60, 760, "Geheim")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _ignored(platform_server: Any, frame: Any) -> tuple[str, ...]:
    """What users wrote (course title, file names, the teacher's prompt): never the interface's language."""
    state = platform_server.app.extensions["state"]
    names = frame.locator("#cb-materials tr th, #cb-materials tr td:first-child").all_inner_texts() \
        if frame.locator("#cb-materials").count() else []
    return (state.context_title, helpers.TEACHER_PROMPT, LOCKED_PDF, "photosynthesis.pdf", *names)


def _viewport(page: Any, viewport: dict[str, int]) -> None:
    """Show the launched page at this size (320 px: a phone)."""
    page.set_viewport_size(viewport)


@pytest.mark.parametrize("lang, address, viewport", [pytest.param(*w, id=i) for w, i in zip(WALKS, WALK_IDS)],
                         indirect=["address"])
def test_teacher_and_admin_walk_every_tab(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                          platform_module: Any, platform_server: Any, lang: str, address: str,
                                          viewport: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _user(platform_module, monkeypatch, "admin", lang)
    page = launch(admin, framed=False)
    _viewport(page, viewport)
    frame = tool_frame(page)
    expect(frame.locator("main[data-page='teacher'][data-role='administrator']")).to_have_attribute("data-lang", lang)
    expect(frame.locator("#s-prompt")).not_to_have_value("")

    # A material that failed: a password-protected PDF, its reason in the page's language.
    frame.locator("#tab-materials").click()
    rows = frame.locator("#cb-materials tr", has_text=LOCKED_PDF)
    frame.wait_for_timeout(500)
    if rows.count() == 0:
        frame.locator("#m-files").set_input_files(
            {"name": LOCKED_PDF, "mimeType": "application/pdf", "buffer": _locked_pdf()})
        frame.locator("#cb-upload button[type=submit]").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("PDF", timeout=60_000)  # the reason names the PDF in either language
    walk = Walk(page, frame, lang, address, _ignored(platform_server, frame))

    frame.locator("#tab-settings").click()
    frame.locator("#tab-settings").focus()
    tabs = frame.locator("[role=tab]")
    names = [tabs.nth(i).get_attribute("data-tab") or str(i) for i in range(tabs.count())]
    assert "admin" in names and "settings" in names, names
    for index, name in enumerate(names):
        if index:
            page.keyboard.press("ArrowRight")
        tab = tabs.nth(index)
        expect(tab).to_be_focused()
        expect(frame.locator("#" + str(tab.get_attribute("aria-controls")))).to_be_visible()
        frame.wait_for_timeout(500)  # the tab's data arrives
        walk.check(f"teacher tab {name}")
        if name == "preview":
            start = frame.locator("#cb-preview-start")
            start.focus()
            page.keyboard.press("Enter")
            expect(frame.locator("#cb-preview-area")).to_be_visible()
            walk.check("teacher preview started")
            tab.focus()  # back to the tab list, as a keyboard user does with Shift+Tab
    walk.assert_clean()


@pytest.mark.parametrize("lang, address, viewport", [pytest.param(*w, id=i) for w, i in zip(WALKS, WALK_IDS)],
                         indirect=["address"])
def test_student_walks_every_state(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                   platform_module: Any, platform_server: Any, tool_server: Any, lang: str,
                                   address: str, viewport: dict[str, int], model: Callable[..., None],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    model(ANSWERS[lang], delay_s=0.15)
    helpers.ensure_material(launch, tool_frame).context.close()
    student = _user(platform_module, monkeypatch, "student", lang)
    page = launch(student, framed=False)
    _viewport(page, viewport)
    frame = tool_frame(page)
    expect(frame.locator("main[data-page='student']")).to_have_attribute("data-lang", lang)
    walk = Walk(page, frame, lang, address, _ignored(platform_server, frame) + (QUESTIONS[lang],))

    expect(frame.locator('[data-chat="cb"][data-ready="1"]')).to_have_count(1)
    accept = frame.locator('[data-cb="consent-accept"]')
    expect(accept).to_be_visible()
    walk.check("consent")
    decline = frame.locator('[data-cb="consent-decline"]')
    decline.focus()
    page.keyboard.press("Enter")
    review = frame.locator('[data-cb="consent-review"]')
    expect(review).to_be_focused()
    walk.check("consent declined")
    page.keyboard.press("Enter")  # read the notice again, then agree
    expect(accept).to_be_visible()
    accept.focus()
    page.keyboard.press("Enter")
    question = frame.locator('[data-cb="question"]')
    expect(question).to_be_visible()
    walk.check("empty")

    question.focus()
    page.keyboard.type(QUESTIONS[lang])
    page.keyboard.press("Enter")
    expect(frame.locator(".cb-streaming").last).not_to_have_text("")
    walk.check("answering")
    expect(frame.locator('[data-cb="stop"]')).to_be_hidden(timeout=30_000)
    expect(frame.locator(".cb-msg.cb-assistant").last).to_contain_text(ANSWERS[lang].split(" ")[1], timeout=30_000)
    walk.check("answered")

    model(None)  # the model server is down
    question.focus()
    page.keyboard.type(QUESTIONS[lang])
    page.keyboard.press("Enter")
    expect(frame.locator('[data-cb="stop"]')).to_be_hidden(timeout=30_000)
    frame.wait_for_timeout(500)
    walk.check("model down")

    config = tool_server.app.extensions["coursebots.config"]
    if hasattr(config, "quota_student_questions_per_day"):
        monkeypatch.setitem(tool_server.app.extensions, "coursebots.config",
                            dataclasses.replace(config, quota_student_questions_per_day=1))
        model(ANSWERS[lang])
        with page.expect_response(lambda r: r.request.method == "POST" and r.status == 429):
            question.focus()
            page.keyboard.type(QUESTIONS[lang])
            page.keyboard.press("Enter")
        frame.wait_for_timeout(500)
        walk.check("quota used up")
    walk.assert_clean()
