"""Fair use in Chromium: a German student over the daily limit reads why and when it resets, in German, and the
question they typed stays in the input."""
from __future__ import annotations

from typing import Any, Callable

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_german_student_over_the_limit_keeps_the_typed_question(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], tool_server: Any, platform_server: Any,
        platform_module: Any) -> None:
    from sqlalchemy import delete, select

    from course_bots import i18n
    from course_bots.models import CourseBot
    from course_bots.quotas.models import BotQuota
    from lti_tool.extensions import db

    member = platform_module.USERS["student"].roles
    platform_module.USERS["quinn"] = platform_module.User("31", "Quinn", "Quota", "quinn@example.edu", member,
                                                          locale="de")
    page = launch("quinn")
    frame = tool_frame(page)
    expect(frame.locator('[data-chat="cb"][data-ready="1"]')).to_have_count(1)
    consent = frame.locator('[data-cb="consent-accept"]')
    if consent.is_visible():
        consent.click()
    app = tool_server.app
    with app.app_context():
        context_id = platform_server.app.extensions["state"].context_id
        bot_id = db.session.scalars(select(CourseBot.id).where(CourseBot.context_id == context_id)).first()
        db.session.add(BotQuota(bot_id=bot_id, role="learner", questions_per_day=2))
        db.session.commit()
    try:
        question = frame.locator('[data-cb="question"]')
        for text in ("Was ist Photosynthese?", "Wo findet sie statt?"):
            question.fill(text)
            frame.locator('[data-cb="send"]').click()
            expect(frame.locator('[data-cb="send"]')).to_be_enabled()
        expect(frame.locator('[data-cb="quota"]')).to_contain_text("0")  # the count shows when it gets low
        question.fill("Und was braucht sie dafür?")
        frame.locator('[data-cb="send"]').click()
        refused = frame.locator('[data-cb="refused"]')
        expect(refused).to_be_visible()
        message = i18n.catalogue("de")["quota_questions_exceeded"]  # German, in the default Sie
        expect(refused).to_contain_text(message.split("{time}")[0].format(limit=2))
        expect(refused).to_contain_text(message.split("{time}")[1])
        expect(refused).to_contain_text("00:00")  # the local reset time: midnight of the quota's time zone
        expect(question).to_have_value("Und was braucht sie dafür?")
    finally:
        with app.app_context():
            db.session.execute(delete(BotQuota).where(BotQuota.bot_id == bot_id))
            db.session.commit()


def test_administrator_sets_limits_and_teacher_may_only_tighten(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], tool_server: Any,
        platform_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from axe_playwright_python.sync_playwright import Axe
    from sqlalchemy import delete

    from course_bots.quotas.models import BotQuota, PlatformQuota
    from lti_tool.extensions import db

    institution = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
    monkeypatch.setitem(platform_module.USERS, "quota-admin", platform_module.User(
        "41", "Ada", "Admin", "ada@example.edu",
        (institution + "Administrator", platform_module.MEMBERSHIP + "Instructor"), locale="de"))
    page = launch("quota-admin", framed=False)
    frame = tool_frame(page)
    try:
        # settings tab (shown first): the teacher's overrides show the platform's limit of each field
        hint = frame.locator("#q-learner-burst_per_minute-platform")
        expect(hint).to_have_text("Plattform: keine Grenze")  # this harness turns the default burst off
        frame.locator("#tab-admin").click()
        expect(frame.locator("#a-q-learner-burst_per_minute-default")).to_have_text("Standard: keine Grenze")
        frame.locator("#panel-admin").get_by_label("Fragen pro Minute").first.fill("4")  # the learners' burst
        frame.locator("#a-quotas button[type=submit]").click()
        expect(frame.locator("#cb-teacher-status")).to_have_text("Grenzen gespeichert.")
        frame.wait_for_timeout(300)
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
        frame.locator("#tab-settings").click()
        expect(hint).to_have_text("Plattform: 4")
        frame.locator("#q-learner-burst_per_minute").fill("5")  # looser than the platform: refused
        frame.locator("#q-overrides button[type=submit]").click()
        expect(frame.locator("#cb-teacher-status")).to_contain_text("Ihre Plattform erlaubt höchstens 4")
        frame.locator("#q-learner-burst_per_minute").fill("3")
        frame.locator("#q-overrides button[type=submit]").click()
        expect(frame.locator("#cb-teacher-status")).to_have_text("Grenzen gespeichert.")
    finally:
        with tool_server.app.app_context():
            db.session.execute(delete(BotQuota))
            db.session.execute(delete(PlatformQuota))
            db.session.commit()
