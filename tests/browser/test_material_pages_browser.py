"""A file's pages in the teacher's Materials tab, in Chromium: exclude a page and it leaves the answers, replace its
text and the replacement is cited, a new version brings the old edits back for a decision per page. Keyboard only
for the page actions, English and German, axe on every state, the materials table at 320 px."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest
from playwright.sync_api import expect

from course_bots.chat.models import Message
from course_bots.materials.models import Material, MaterialPage
from lti_tool.extensions import db
from tests.browser import chat_helpers as helpers

pytestmark = pytest.mark.browser

SLOW = 60_000  # ms: a shared machine's worker may take a while to re-index
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "teacher-material-pages.png"
FILE = "Zellatmung-2019_Klausur.notes.pdf"
FILLER = "Students revise glycolysis, the citric acid cycle and the respiratory chain with worked examples."
PAGES_V1 = [
    ["Cellular respiration overview for the biology course.", FILLER,
     "Cells turn glucose and oxygen into carbon dioxide, water and usable energy stored as ATP.", FILLER],
    ["Old exam from 2019, question four:", "Explain the oxidative decarboxylation of pyruvate in the mitochondrial",
     "matrix and name the enzyme complex that catalyses this quokka reaction step.", FILLER],
    ["Formula sheet as scanned:", "The net equation of respiration reads C6H1206 + 602 -> 6C02 + 6H20 garbled.",
     FILLER, FILLER],
]
PAGES_V2 = [["Cellular respiration overview, second edition for the winter term.", FILLER,
             "Cells turn glucose and oxygen into carbon dioxide, water and ATP.", FILLER],
            PAGES_V1[1], PAGES_V1[2]]
EXAM_QUESTION = "Which enzyme complex catalyses the quokka reaction step of pyruvate?"
REPLACEMENT = ("The net equation of cellular respiration: C6H12O6 + 6 O2 gives 6 CO2 + 6 H2O plus the axolotl "
               "energy of about 30 ATP per glucose molecule.")
FORMULA_QUESTION = "How much axolotl energy does one glucose molecule give?"


def tab_to(page: Any, target: Any, presses: int = 80) -> None:
    """Press Tab until ``target`` has the focus (the keyboard's way there)."""
    for _ in range(presses):
        if target.evaluate("node => node === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError("never reached by Tab: " + target.evaluate("node => node.outerHTML.slice(0, 200)"))


def row_of(frame: Any) -> Any:
    return frame.locator("#cb-materials tr", has=frame.locator(".cb-fname", has_text=re.compile("Klausur")))


def upload(frame: Any, pages: list[list[str]], ready: str) -> None:
    frame.locator("#m-files").set_input_files({"name": FILE, "mimeType": "application/pdf",
                                               "buffer": helpers.tiny_pdf(pages)})
    frame.locator("#cb-upload button[type=submit]").click()
    expect(row_of(frame)).to_have_count(1, timeout=180_000)  # the new version replaced the old one
    expect(row_of(frame).locator(".cb-mstatus")).to_have_text(ready, timeout=180_000)


def wait_ready(frame: Any, ready: str) -> None:
    """The file was queued again by an edit; wait until its new index is in place."""
    expect(row_of(frame).locator(".cb-mstatus")).to_have_text(ready, timeout=180_000)
    expect(frame.locator("#cb-pages-busy")).to_be_hidden(timeout=30_000)


def cited(page: Any, frame: Any, tool_server: Any, question: str) -> list[tuple[str, int | None, str]]:
    """Ask in the preview; the (file, page, quote) of every citation of the stored answer."""
    def last_answer() -> Any:
        with tool_server.app.app_context():
            try:
                return db.session.query(Message).filter_by(role="assistant").order_by(Message.id.desc()).first()
            finally:
                db.session.remove()

    before = last_answer()
    frame.locator("#tab-preview").click()
    if frame.locator("#cb-preview-start").is_visible():
        frame.locator("#cb-preview-start").click()
    box = frame.locator("#pv-question")
    expect(box).to_be_visible(timeout=SLOW)
    box.fill(question)
    box.press("Enter")
    answer = before
    for _ in range(600):  # the answer is stored when its stream ends
        answer = last_answer()
        if answer is not None and (before is None or answer.id != before.id):
            break
        frame.wait_for_timeout(200)
    assert answer is not None and (before is None or answer.id != before.id), "no answer"
    expect(box).to_be_enabled(timeout=SLOW)
    frame.locator("#tab-materials").click()
    return [(c.get("document_title", ""), c.get("position"), c.get("quote", "")) for c in answer.citations or []]


def pages_of_file(citations: list[tuple[str, int | None, str]]) -> set[int | None]:
    return {position for title, position, _ in citations if title == FILE}


def open_pages(page: Any, frame: Any) -> None:
    button = row_of(frame).locator("[data-pages]")
    button.focus()
    page.keyboard.press("Enter")
    expect(frame.locator("#cb-pages-title")).to_be_focused(timeout=SLOW)
    expect(frame.locator("#cb-pages .cb-page")).to_have_count(3, timeout=SLOW)


def article(frame: Any, number: int) -> Any:
    return frame.locator(f'#cb-pages article[data-page-number="{number}"]')


def test_exclude_replace_and_new_version_by_keyboard(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                     tool_server: Any) -> None:
    page = launch("teacher", framed=False)  # axe checks the tool's own document
    frame = tool_frame(page)
    expect(frame.locator("#s-prompt")).not_to_have_value("", timeout=SLOW)
    frame.locator("#tab-materials").click()
    frame.wait_for_timeout(500)
    page.on("dialog", lambda dialog: dialog.accept())
    if row_of(frame).count():  # a rerun in the same server: start from the first version
        row_of(frame).get_by_role("button", name=re.compile("^Delete")).click()
        expect(row_of(frame)).to_have_count(0, timeout=SLOW)
    upload(frame, PAGES_V1, "ready")
    assert 2 in pages_of_file(cited(page, frame, tool_server, EXAM_QUESTION))

    open_pages(page, frame)
    exam = article(frame, 2)
    expect(exam).to_contain_text("quokka reaction step", timeout=SLOW)
    expect(exam.locator("summary")).to_contain_text("Passages the search uses: 1", timeout=SLOW)
    helpers.axe_clean(page, "pages of a file")
    exclude = exam.get_by_role("button", name="Exclude page")
    tab_to(page, exclude)
    page.keyboard.press("Enter")
    expect(exam).to_contain_text("Excluded: the assistant does not use this page.", timeout=SLOW)
    expect(frame.locator("#cb-teacher-status")).to_have_text("Saved. The file is being indexed again.", timeout=SLOW)
    expect(exam.get_by_role("button", name="Use page again")).to_be_focused(timeout=SLOW)
    wait_ready(frame, "ready")
    citations = cited(page, frame, tool_server, EXAM_QUESTION)
    assert 2 not in pages_of_file(citations) and not any("quokka" in quote for _, _, quote in citations)

    formula = article(frame, 3)
    replace = formula.get_by_role("button", name="Replace text")
    tab_to(page, replace)
    page.keyboard.press("Enter")
    editor = formula.get_by_role("textbox")
    expect(editor).to_be_focused(timeout=SLOW)
    expect(editor).to_have_value(re.compile("C6H1206"), timeout=SLOW)
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(REPLACEMENT)
    tab_to(page, formula.get_by_role("button", name="Save text"))
    page.keyboard.press("Enter")
    expect(formula).to_contain_text("Edited: the assistant uses your text instead of the file's.", timeout=SLOW)
    expect(formula.locator(".cb-page-text").first).to_have_text(REPLACEMENT, timeout=SLOW)
    wait_ready(frame, "ready")
    expect(formula.locator(".cb-page-passages")).to_contain_text("axolotl", timeout=SLOW)
    expect(row_of(frame).locator("td").nth(1)).to_contain_text("1 excluded, 1 with your text", timeout=SLOW)
    helpers.axe_clean(page, "a file with an excluded and a replaced page")
    citations = cited(page, frame, tool_server, FORMULA_QUESTION)
    assert 3 in pages_of_file(citations)
    assert any("axolotl" in quote for title, _, quote in citations if title == FILE)

    upload(frame, PAGES_V2, "ready")  # a new version of the file: the edits wait for the teacher
    contribution = row_of(frame).locator("td").nth(1)
    expect(contribution).to_contain_text("2 edits of the previous version to review", timeout=SLOW)
    open_pages(page, frame)
    exam, formula = article(frame, 2), article(frame, 3)
    expect(exam.locator(".cb-page-previous")).to_contain_text("You had excluded this page.", timeout=SLOW)
    expect(exam.locator(".cb-page-previous")).to_contain_text("The text of this page is the same in the new version.",
                                                              timeout=SLOW)
    expect(formula.locator(".cb-page-previous")).to_contain_text(REPLACEMENT, timeout=SLOW)
    helpers.axe_clean(page, "edits of the previous version")
    keep = exam.get_by_role("button", name="Keep edit")
    tab_to(page, keep)
    page.keyboard.press("Enter")
    expect(exam).to_contain_text("Excluded: the assistant does not use this page.", timeout=SLOW)
    expect(exam.locator(".cb-page-previous")).to_have_count(0, timeout=SLOW)
    drop = formula.get_by_role("button", name="Discard edit")
    tab_to(page, drop)
    page.keyboard.press("Enter")
    expect(frame.locator("#cb-teacher-status")).to_have_text("Edit discarded.", timeout=SLOW)
    expect(formula.locator(".cb-page-previous")).to_have_count(0, timeout=SLOW)
    expect(formula).not_to_contain_text("Edited:", timeout=SLOW)
    wait_ready(frame, "ready")
    assert 2 not in pages_of_file(cited(page, frame, tool_server, EXAM_QUESTION))
    close = frame.get_by_role("button", name="Close the pages")
    tab_to(page, close)
    page.keyboard.press("Enter")
    expect(frame.locator("#cb-pages")).to_be_hidden(timeout=SLOW)
    expect(row_of(frame).locator("[data-pages]")).to_be_focused(timeout=SLOW)


def test_german_pages_and_the_materials_table_at_320px(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], platform_module: Any,
        screenshot: Callable[..., Path]) -> None:
    platform_module.USERS.setdefault("teacherde", platform_module.User(
        "7", "Greta", "Lehmann", "greta@example.edu", (platform_module.MEMBERSHIP + "Instructor",), locale="de-DE"))
    page = launch("teacherde", framed=False)
    frame = tool_frame(page)
    expect(frame.locator("#s-prompt")).not_to_have_value("", timeout=SLOW)
    frame.locator("#tab-materials").click()
    frame.wait_for_timeout(500)
    if not row_of(frame).count():
        upload(frame, PAGES_V1, "bereit")
    expect(row_of(frame).locator(".cb-mstatus")).to_have_text("bereit", timeout=180_000)
    expect(frame.locator("thead")).to_contain_text("Beitrag", timeout=SLOW)
    expect(row_of(frame).locator("td").nth(1)).to_contain_text(re.compile(r"3\sSeiten,\s\d+\sAbschnitt"), timeout=SLOW)
    name = row_of(frame).locator(".cb-fname")
    assert name.locator("wbr").count() == 4  # after "-", "_" and both "."
    assert name.evaluate("node => getComputedStyle(node).overflowWrap") == "break-word"
    open_pages(page, frame)
    expect(frame.locator("#cb-pages-title")).to_have_text(f"Was der Assistent in {FILE} gelesen hat", timeout=SLOW)
    exam = article(frame, 2)
    expect(exam.get_by_role("heading", name="Seite 2")).to_be_visible(timeout=SLOW)
    if exam.get_by_role("button", name="Seite ausschließen").count():
        button = exam.get_by_role("button", name="Seite ausschließen")
        tab_to(page, button)
        page.keyboard.press("Enter")
    expect(exam).to_contain_text("Ausgeschlossen: Der Assistent verwendet diese Seite nicht.", timeout=SLOW)
    formula = article(frame, 3)
    if formula.get_by_role("button", name="Text ersetzen").count():
        tab_to(page, formula.get_by_role("button", name="Text ersetzen"))
        page.keyboard.press("Enter")
        editor = formula.get_by_role("textbox", name="Text, den der Assistent für Seite 3 verwendet")
        expect(editor).to_be_focused(timeout=SLOW)
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type("Summengleichung der Zellatmung: C6H12O6 + 6 O2 → 6 CO2 + 6 H2O (etwa 30 ATP je Glucose).")
        tab_to(page, formula.get_by_role("button", name="Text speichern"))
        page.keyboard.press("Enter")
    expect(formula).to_contain_text("Bearbeitet: Der Assistent verwendet Ihren Text statt des Texts der Datei.",
                                    timeout=SLOW)
    wait_ready(frame, "bereit")
    expect(formula.locator(".cb-page-passages")).to_contain_text("Summengleichung", timeout=SLOW)
    helpers.axe_clean(page, "German pages")
    page.set_viewport_size({"width": 900, "height": 1000})
    screenshot(page, SCREENSHOT)
    page.set_viewport_size({"width": 320, "height": 800})
    overflow = frame.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "the Materials tab scrolls sideways at 320 px"
    status = row_of(frame).locator(".cb-mstatus")
    assert status.evaluate("node => node.getBoundingClientRect().width") > 150  # a readable line, not a sliver
    for part in ("-", "_", "."):  # every line of the name ends at a separator or the name's end
        assert part in FILE
    lines = name.evaluate("""node => {
        const range = document.createRange(); const text = node.textContent; const tops = []; let line = '';
        const out = []; let walked = 0;
        for (const child of node.childNodes) {
          if (child.nodeType !== 3) continue;
          for (let i = 0; i < child.length; i++) {
            range.setStart(child, i); range.setEnd(child, i + 1);
            const top = Math.round(range.getBoundingClientRect().top);
            if (tops.length && top !== tops[tops.length - 1]) { out.push(line); line = ''; }
            tops.push(top); line += child.data[i]; walked++;
          }
        }
        out.push(line); return out;
    }""")
    assert "".join(lines) == FILE
    assert all(line[-1] in "-_." for line in lines[:-1]), lines
    helpers.axe_clean(page, "Materials tab at 320 px")


def test_a_file_indexed_before_pages_were_kept_offers_a_reindex(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], tool_server: Any) -> None:
    page = launch("teacher", framed=False)
    frame = tool_frame(page)
    expect(frame.locator("#s-prompt")).not_to_have_value("", timeout=SLOW)
    frame.locator("#tab-materials").click()
    frame.wait_for_timeout(500)
    if not row_of(frame).count():
        upload(frame, PAGES_V1, "ready")
    expect(row_of(frame).locator(".cb-mstatus")).to_have_text("ready", timeout=180_000)
    with tool_server.app.app_context():  # as a file ingested by an earlier release
        ids = [m.id for m in db.session.query(Material).filter_by(filename=FILE)]
        db.session.query(MaterialPage).filter(MaterialPage.material_id.in_(ids)).delete()
        db.session.commit()
        db.session.remove()
    button = row_of(frame).locator("[data-pages]")
    button.focus()
    page.keyboard.press("Enter")
    expect(frame.locator("#cb-pages-list")).to_contain_text("appear once it has been indexed again", timeout=SLOW)
    helpers.axe_clean(page, "a file without stored pages")
    reindex = frame.locator("#cb-pages-list").get_by_role("button", name="Re-index")
    tab_to(page, reindex)
    page.keyboard.press("Enter")
    expect(frame.locator("#cb-pages .cb-page")).to_have_count(3, timeout=180_000)
