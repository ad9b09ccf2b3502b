"""Usage charts in Chromium (charts.js, no CDN): axes, date labels and values, and the same numbers as a table.

The teacher's chart in English and the administrator's in German, on a desktop and at 320 px, by keyboard,
with axe finding nothing.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from course_bots.chat import usage
from course_bots.models import CourseBot
from lti_tool.extensions import db, utcnow
from tests.browser.chat_helpers import axe_clean

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def seed_usage(tool_server: Any, platform_server: Any) -> int:
    """Questions on three days of the last week for the course's bot (created by the launch); today's count."""
    state = platform_server.app.extensions["state"]
    with tool_server.app.app_context():
        bot = db.session.scalars(select(CourseBot).where(CourseBot.issuer == state.issuer,
                                                         CourseBot.context_id == state.context_id)).one()
        today = utcnow().date()
        usage.add_usage(bot.id, day=today - timedelta(days=6), questions=4, answers=4, prompt_tokens=900)
        usage.add_usage(bot.id, day=today - timedelta(days=2), questions=9, answers=8, errors=1)
        usage.add_usage(bot.id, day=today, questions=2, answers=2, completion_tokens=120)
        db.session.commit()
        return int(usage.usage_daily(1, bot_id=bot.id)["days"][0]["questions"])


def _check_chart(page: Any, frame: Any, box: str, summary: str, caption: str, date_header: str,
                 legend: str, today_questions: int) -> None:
    """The chart in ``box`` has axes, labels and a legend; its table opens by keyboard and holds 30 days."""
    chart = frame.locator(f"{box} svg.cb-chart[role=img]")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("aria-label", caption)
    expect(chart.locator("line").first).to_be_attached()  # axes and gridlines
    expect(chart.locator("text", has_text=legend).first).to_be_attached()
    expect(chart.locator("text", has_text=date_header)).to_have_count(1)  # the x axis' title
    assert chart.locator("rect title").count() >= 30  # one bar per day, its value as a tooltip
    assert not any(s.startswith("http") for s in frame.evaluate("[...document.scripts].map(s => s.src)")
                   if "localhost" not in s and "127.0.0.1" not in s)  # no CDN
    table = frame.locator(f"{box} details.cb-chart-table table")
    expect(table).to_be_hidden()
    frame.locator(f"{box} summary").focus()
    expect(frame.locator(f"{box} summary")).to_have_text(summary)
    page.keyboard.press("Enter")
    expect(table).to_be_visible()
    expect(table.locator("caption")).to_have_text(caption)
    expect(table.get_by_role("columnheader", name=date_header, exact=True)).to_have_count(1)
    expect(table.locator("tbody tr")).to_have_count(30)
    expect(table.locator("tbody tr").last.locator("td").first).to_have_text(str(today_questions))


def _narrow(page: Any, frame: Any, where: str) -> None:
    page.set_viewport_size({"width": 320, "height": 800})
    frame.wait_for_timeout(400)  # the chart redraws for the new width
    overflow = frame.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{where}: the page scrolls sideways by {overflow}px at 320px"
    axe_clean(page, f"{where} at 320px")


def test_teacher_usage_chart_in_english(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                        tool_server: Any, platform_server: Any,
                                        screenshot: Callable[..., Any]) -> None:
    page = launch("teacher", framed=False)
    frame = tool_frame(page)
    expect(frame.locator("main[data-page='teacher']")).to_be_visible()
    today = seed_usage(tool_server, platform_server)
    frame.locator("#tab-settings").focus()
    frame.locator("#tab-logs").click()
    _check_chart(page, frame, "#cb-chart", "Show as a table", "Questions per day", "Date", "Answers", today)
    dates = frame.locator("#cb-chart svg text").all_text_contents()
    assert any(any(m in d for m in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                    "Dec")) for d in dates), dates  # English date labels
    axe_clean(page, "teacher usage chart")
    screenshot(page, DOCS / "teacher-usage-chart.png")
    _narrow(page, frame, "teacher usage chart")


def test_administrator_usage_charts_in_german(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                              admin_user: str, tool_server: Any, platform_server: Any) -> None:
    page = launch(admin_user, framed=False)
    frame = tool_frame(page)
    expect(frame.locator("main[data-page='teacher'][data-role='administrator']")).to_be_visible()
    today = seed_usage(tool_server, platform_server)
    frame.locator("#tab-settings").focus()
    page.keyboard.press("End")  # keyboard: the last tab is the administration
    expect(frame.locator("#panel-admin")).to_be_visible()
    _check_chart(page, frame, "#a-usage-chart", "Als Tabelle anzeigen", "Fragen, Antworten und Fehler pro Tag",
                 "Datum", "Fehler", today)
    first_date = frame.locator("#a-usage-chart tbody th").first.text_content() or ""
    assert any(m in first_date for m in ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
                                         "September", "Oktober", "November", "Dezember")), first_date
    expect(frame.locator("#a-tokens-chart svg.cb-chart")).to_have_attribute("aria-label", "Tokens pro Tag")
    expect(frame.get_by_role("table", name="Nutzung pro Modell (gespeicherte Antworten)")).to_have_count(1)
    axe_clean(page, "administration usage charts")
    _narrow(page, frame, "administration usage charts")
