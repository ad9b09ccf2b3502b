"""The Administration tab in Chromium: only administrators see it; registrations, models, retention, usage; axe."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable

import pytest
from playwright.sync_api import expect

from course_bots.privacy import operations as privacy_ops
from tests.browser.chat_helpers import axe_clean

pytestmark = pytest.mark.browser

CATALOGUE = ('[[models]]\nkey = "qwen"\nlabel = "Qwen 7B"\nkind = "local"\nmodel = "qwen"\ncontext_window = 8192\n'
             'base_url = "http://gpu.internal:8001/v1"\n\n'
             '[[models]]\nkey = "gw"\nlabel = "Gateway"\nkind = "external"\nmodel = "gpt"\ncontext_window = 16000\n'
             'max_new_tokens = 800\nbase_url = "https://gw.example/v1"\n')


@pytest.fixture
def catalogue(tool_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's model catalogue: one local and one external model, reached at URLs nobody may see."""
    path = tmp_path / "models.toml"
    path.write_text(CATALOGUE, encoding="utf-8")
    config = tool_server.app.extensions["coursebots.config"]
    monkeypatch.setitem(tool_server.app.extensions, "coursebots.config",
                        dataclasses.replace(config, model_catalogue=str(path)))


def test_administrator_sees_the_administration_tab(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                                   admin_user: str, platform_server: Any,
                                                   tool_server: Any, catalogue: None) -> None:
    page = launch(admin_user, framed=False)
    frame = tool_frame(page)
    expect(frame.locator("main[data-page='teacher'][data-role='administrator']")).to_be_visible()
    expect(frame.locator("#s-prompt")).not_to_have_value("")
    frame.locator("#tab-settings").focus()
    page.keyboard.press("End")  # keyboard: the last tab is the administration
    tab = frame.locator("#tab-admin")
    expect(tab).to_be_focused()
    expect(tab).to_have_text("Administration")
    panel = frame.locator("#panel-admin")
    expect(panel).to_be_visible()

    state = platform_server.app.extensions["state"]
    platforms = frame.locator("#a-platforms tr")
    expect(platforms).to_have_count(1)
    expect(platforms.first.locator("th")).to_have_text(state.client_id)
    expect(platforms.first).to_contain_text("manuell")
    deployment = re.compile(rf"^{re.escape(state.deployment_id)} \(\d+\)$")  # "1 (bots)"
    expect(platforms.first.locator("td").nth(2)).to_have_text(deployment)
    expect(frame.locator("#a-issuer")).to_contain_text(state.issuer)

    models = frame.locator("#a-models tr")
    expect(models).to_have_count(3)
    expect(models.first.locator("th")).to_contain_text("Standard")
    expect(models.nth(1)).to_have_text(re.compile(r"Qwen 7B\s*lokal.*8[.,]?192"))
    expect(models.nth(2)).to_have_text(re.compile(r"Gateway\s*extern.*16[.,]?000\s*800"))
    expect(panel).not_to_contain_text("gpu.internal")  # never a model's URL
    expect(panel).not_to_contain_text("gw.example")

    expect(frame.locator("#a-anonymize")).not_to_have_value("")
    expect(frame.locator("#a-delete")).not_to_have_value("")
    expect(frame.locator("#a-settings dt").first).to_be_visible()
    expect(frame.locator("#a-settings")).to_contain_text("COURSEBOTS_PRIVACY_MIN_STUDENTS")

    expect(frame.locator("#a-usage tr").first.locator("th")).not_to_have_text("")
    expect(frame.locator("#a-usage-totals th")).to_contain_text("Summe")
    for header in ("Kurs", "Fragen", "Antworten", "Fehler", "Tokens"):
        per_course = frame.locator("[aria-labelledby='a-usage-h']")  # the per-model table has some of them too
        expect(per_course.get_by_role("columnheader", name=header, exact=True)).to_have_count(1)
    frame.wait_for_timeout(300)
    axe_clean(page, "administration tab")

    # Retention: the form saves through the platform rule's API (and is put back afterwards).
    before = (frame.locator("#a-anonymize").input_value(), frame.locator("#a-delete").input_value())
    frame.get_by_label("Pseudonyme entfernen nach (Tagen)").fill("30")
    frame.get_by_label("Unterhaltungen löschen nach (Tagen)").fill("200")
    frame.locator("#a-retention button[type=submit]").click()
    expect(frame.locator("#cb-teacher-status")).to_have_text("Aufbewahrung gespeichert.")
    with tool_server.app.app_context():
        rule = privacy_ops.platform_retention(state.issuer)
        assert (rule.anonymize_days, rule.delete_days) == (30, 200)
    frame.locator("#a-anonymize").fill(before[0])
    frame.locator("#a-delete").fill(before[1])
    with page.expect_response(lambda r: r.url.endswith("/api/v1/admin/retention")
                              and r.request.method == "PUT") as saved:
        frame.locator("#a-delete").press("Enter")  # keyboard submit
    assert saved.value.ok
    with tool_server.app.app_context():
        rule = privacy_ops.platform_retention(state.issuer)
        assert (str(rule.anonymize_days), str(rule.delete_days)) == before

    # 320 px wide: nothing forces the page to scroll sideways, and axe still finds nothing.
    page.set_viewport_size({"width": 320, "height": 800})
    frame.wait_for_timeout(300)
    overflow = frame.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px at 320px"
    axe_clean(page, "administration tab at 320px")


def test_instructor_has_no_administration_tab(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                              tool_requests: Callable[[Any], list[Any]]) -> None:
    page = launch("teacher")
    frame = tool_frame(page)
    expect(frame.locator("main[data-page='teacher']")).to_have_attribute("data-role", "instructor")
    expect(frame.locator("#tab-settings")).to_be_visible()
    expect(frame.locator("#tab-admin")).to_have_count(0)
    expect(frame.locator("#panel-admin")).to_have_count(0)
    assert not any(r.url.endswith("/admin.js") for r in tool_requests(page))
    status = frame.evaluate("window.CourseBots.fetch('/api/v1/admin/platforms').then(r => r.status)")
    assert status == 403
