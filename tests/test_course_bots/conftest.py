"""Fixtures for course_bots tests: bots, session tokens for students and teachers, bearer headers, and a migrated
app with two courses for the materials and test-question APIs."""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from werkzeug.test import TestResponse

from course_bots.models import CourseBot
from course_bots.privacy_rules import pseudonym
from lti_tool.context import SessionToken, issue_token
from lti_tool.extensions import current_config, db
from tests.conftest import reset_postgres
from tests.db_faults import dispose, one_course_app

ISSUER = "https://moodle.example.edu"
LMS_ISSUER = "https://lms.example"  # the platform of ``two_courses``
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


@pytest.fixture
def two_courses(request: pytest.FixtureRequest, make_app: Callable[..., Flask],
                tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """``two_courses(database="sqlite", **config) -> Flask``: a migrated app whose bots 1 and 2 are the courses
    ``c1`` and ``c2`` of ``LMS_ISSUER``; hashing embeddings, no ingestion threads (the test calls ``run_pending()``).
    ``database="postgresql"`` starts from an empty PostgreSQL test database instead of SQLite."""
    apps: list[Flask] = []

    def build(database: str = "sqlite", **overrides: object) -> Flask:
        url = f"sqlite:///{tmp_path / 'courses.sqlite3'}"
        if database == "postgresql":
            url = request.getfixturevalue("postgres_database")
            reset_postgres(url)
        app = make_app(database_url=url, ingest_threads=0, embedding_model="hashing", **overrides)
        with app.app_context():
            upgrade()
            for context in ("c1", "c2"):
                db.session.add(CourseBot(issuer=LMS_ISSUER, deployment_id="1", context_id=context, title=""))
            db.session.commit()
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def auth_headers(app: Flask, bot_id: int = 1, role: str = "instructor", locale: str = "en") -> dict[str, str]:
    """The Authorization header of a ``role`` in bot ``bot_id`` of ``two_courses`` (no app context needed)."""
    now = int(time.time())
    claims = SessionToken(issuer=LMS_ISSUER, deployment_id="1", bot_id=bot_id, pseudonym="p" * 16,
                          roles=(role,), locale=locale, expires_at=now + 600, launched_at=now)
    return {"Authorization": f"Bearer {issue_token(app.config['SECRET_KEY'], claims)}"}


def post_file(client: FlaskClient, headers: dict[str, str], name: str, data: bytes, bot_id: int = 1) -> TestResponse:
    """Upload one file to the bot's materials as the teacher page does (multipart ``file``)."""
    return client.post(f"/api/v1/bots/{bot_id}/materials", headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


@pytest.fixture
def course(make_app: Callable[..., Flask], request: pytest.FixtureRequest) -> Iterator[Callable[..., Flask]]:
    """``course(database="sqlite", **config) -> Flask``: a migrated app with bot 1 (PostgreSQL: emptied first)."""
    apps: list[Flask] = []

    def build(database: str = "sqlite", **overrides: object) -> Flask:
        url = request.getfixturevalue("postgres_database") if database == "postgresql" else None
        apps.append(one_course_app(make_app, url, **overrides))
        return apps[-1]

    yield build
    for app in apps:
        dispose(app)
