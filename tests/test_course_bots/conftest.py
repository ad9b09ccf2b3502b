"""Fixtures for course_bots tests: bots, session tokens for students and teachers, and bearer headers."""
from __future__ import annotations

import time
from typing import Callable

import pytest
from flask import Flask

from course_bots.models import CourseBot
from course_bots.privacy_rules import pseudonym
from lti_tool.context import SessionToken, issue_token
from lti_tool.extensions import current_config, db

ISSUER = "https://moodle.example.edu"
BOTH_DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def make_bot(context_id: str = "course-1", issuer: str = ISSUER, title: str = "Einführung in die KI") -> CourseBot:
    """A committed course bot (call inside an app context)."""
    bot = CourseBot(issuer=issuer, deployment_id="1", context_id=context_id, title=title)
    db.session.add(bot)
    db.session.commit()
    return bot


def make_session(bot: CourseBot, sub: str = "user-42", roles: tuple[str, ...] = ("learner",),
                 names: tuple[str, ...] = ("Anna-Lena Müller", "Anna-Lena", "Müller"),
                 preview: bool = False, locale: str = "de-DE") -> SessionToken:
    """Session claims as a launch of ``sub`` into ``bot`` would produce them (call inside an app context)."""
    now = int(time.time())
    return SessionToken(issuer=bot.issuer, deployment_id=bot.deployment_id, bot_id=bot.id,
                        pseudonym=pseudonym(current_config().pseudonym_key, bot.issuer, sub, bot.id),
                        roles=roles, locale=locale, expires_at=now + 1800, launched_at=now, names=names,
                        preview=preview)


def bearer(claims: SessionToken) -> dict[str, str]:
    """The Authorization header a page would send (call inside an app context)."""
    return {"Authorization": "Bearer " + issue_token(current_config().secret_key, claims)}


@pytest.fixture
def ctx(app: Flask):  # type: ignore[no-untyped-def]
    """An app context for the test's body."""
    with app.app_context():
        yield app


@pytest.fixture
def student_factory(ctx: Flask) -> Callable[..., SessionToken]:
    """Build session claims for a student (or any role) of a bot."""
    return make_session
