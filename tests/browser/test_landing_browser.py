"""The tool's root address in Chromium: the admin landing page in German and English, 320 px and desktop.

An administrator who opens CourseBots' address sees what it is, whether it is healthy, its version, the
registration URL with a copy button, the values for a manual registration and the next steps — including the
Moodle step that Dynamic Registration leaves out (showing the tool in the activity chooser). Keyboard only; axe
finds nothing; no sentence in the other language; no personal data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from course_bots.pages import version
from tests.browser import visible_text as visible
from tests.browser.chat_helpers import axe_clean

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 800}


WORDS = {
    "de": {"title": "für die Administration", "copy": "Kopieren", "copied": "Kopiert:", "ready": "Ja",
           "chooser": "Danach: im Aktivitätenwähler anzeigen", "next": "Nächste Schritte"},
    "en": {"title": "for administrators", "copy": "Copy", "copied": "Copied:", "ready": "Yes",
           "chooser": "Then: show it in the activity chooser", "next": "Next steps"},
}


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("viewport", [DESKTOP, NARROW], ids=["desktop", "320px"])
def test_the_root_address_is_an_admin_landing_page(browser: Any, tool_server: Any, lang: str,
                                                   viewport: dict[str, int], screenshot: Any) -> None:
    context = browser.new_context(viewport=viewport, locale=f"{lang}-{lang.upper()}" if lang == "de" else "en-GB",
                                  extra_http_headers={"Accept-Language": f"{lang};q=1.0"})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=tool_server.base_url)
    try:
        page = context.new_page()
        response = page.goto(tool_server.base_url + "/")
        assert response is not None and response.status == 200
        words = WORDS[lang]
        expect(page.locator("main[data-page='landing']")).to_have_attribute("data-lang", lang)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("h1")).to_contain_text(words["title"])
        expect(page.locator("#landing-status")).to_have_attribute("data-ready", "ready")
        expect(page.locator("#landing-status")).to_contain_text(words["ready"])
        expect(page.locator("#landing-version")).to_have_text(version())
        registration = tool_server.base_url + "/lti/register"
        expect(page.locator("#landing-registration-url")).to_have_value(registration)
        for path in ("/lti/launch", "/lti/login", "/lti/jwks"):
            expect(page.locator("#landing-manual")).to_contain_text(tool_server.base_url + path)
        expect(page.get_by_role("heading", name=words["chooser"])).to_be_visible()
        chooser = page.locator("section[aria-labelledby='landing-chooser-h']")
        expect(chooser).to_contain_text("Show in activity chooser and as a preconfigured tool")
        expect(chooser).to_contain_text("More → LTI External tools")
        expect(page.get_by_role("heading", name=words["next"])).to_be_visible()
        # No personal data: nothing of the platform's users or registrations.
        body = page.locator("body").inner_text()
        for private in ("Tessa", "tessa.teacher@example.edu", "Sam", "coursebots-browser-client"):
            assert private not in body

        if lang == "de" and viewport == DESKTOP:
            screenshot(page, SCREENSHOTS / "admin-landing.png")

        # Keyboard only: the skip link leads to the registration; Tab reaches the copy button, Enter copies.
        page.keyboard.press("Tab")
        expect(page.locator(".cb-skip")).to_be_focused()
        page.keyboard.press("Enter")
        copy = page.locator("button[data-copy='landing-registration-url']")
        for _ in range(5):
            page.keyboard.press("Tab")
            if copy.evaluate("el => el === document.activeElement"):
                break
        expect(copy).to_be_focused()
        expect(copy).to_have_text(words["copy"])
        page.keyboard.press("Enter")
        expect(page.locator("#landing-copied")).to_have_text(f"{words['copied']} {registration}")
        expect(copy).to_have_attribute("data-copied", "true")
        assert page.evaluate("navigator.clipboard.readText()") == registration

        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {viewport['width']}px"
        axe_clean(page, f"landing {lang} {viewport['width']}px")
        texts = visible.visible_texts(page.main_frame, lang)
        assert not visible.foreign_sentences(texts, lang), texts
        if lang == "de":
            assert not visible.address_violations(texts, "sie")
    finally:
        context.close()


def test_other_unknown_addresses_stay_404(browser: Any, tool_server: Any) -> None:
    context = browser.new_context()
    try:
        response = context.new_page().goto(tool_server.base_url + "/no-such-page")
        assert response is not None and response.status == 404
    finally:
        context.close()


def test_the_landing_page_speaks_in_the_configured_du(browser: Any, tool_server: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    config = tool_server.app.extensions["coursebots.config"]
    monkeypatch.setitem(tool_server.app.extensions, "coursebots.config",
                        dataclasses.replace(config, german_address="du"))
    context = browser.new_context(viewport=NARROW, locale="de-DE", extra_http_headers={"Accept-Language": "de"})
    try:
        page = context.new_page()
        page.goto(tool_server.base_url + "/")
        expect(page.locator("main[data-page='landing']")).to_have_attribute("data-lang", "de")
        texts = visible.visible_texts(page.main_frame, "de")
        assert "Öffne in Moodle" in " ".join(texts)
        assert not visible.address_violations(texts, "du"), texts
        assert not visible.foreign_sentences(texts, "de")
        axe_clean(page, "landing de du 320px")
    finally:
        context.close()
