"""Database faults for tests: a PostgreSQL connection that dies under a request, as when the server restarts; and
a migrated one-course app with a teacher's bearer header to send requests that meet them."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event
from sqlalchemy.orm import Session

from course_bots.models import CourseBot
from lti_tool.context import SessionToken, issue_token
from lti_tool.extensions import db
from tests.conftest import reset_postgres

ISSUER = "https://lms.example"


def one_course_app(make_app: Callable[..., Flask], database_url: str | None = None, **overrides: Any) -> Flask:
    """A migrated app (SQLite unless ``database_url``, emptied first) with bot 1; ingestion runs when asked."""
    if database_url is not None:
        reset_postgres(database_url)
    app = make_app(**{"ingest_threads": 0, "embedding_model": "hashing", **overrides,
                      **({"database_url": database_url} if database_url else {})})
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer=ISSUER, deployment_id="1", context_id="c1", title=""))
        db.session.commit()
    return app


def teacher(app: Flask, bot_id: int = 1) -> dict[str, str]:
    """The Authorization header of a teacher of bot ``bot_id`` (no app context needed)."""
    now = int(time.time())
    claims = SessionToken(issuer=ISSUER, deployment_id="1", bot_id=bot_id, pseudonym="p" * 16,
                          roles=("instructor",), locale="en", expires_at=now + 600, launched_at=now)
    return {"Authorization": f"Bearer {issue_token(app.config['SECRET_KEY'], claims)}"}


def dispose(app: Flask) -> None:
    """Close the app's database connections (call at the end of a test)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def terminate_backend(admin_url: str, pid: int) -> None:
    """End one PostgreSQL backend from a second connection and wait until the server has let it go."""
    with psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(500):  # a terminated backend leaves pg_stat_activity within milliseconds
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None:
                return
            time.sleep(0.01)
        raise AssertionError(f"backend {pid} did not end")


def backend_pid(connection: Any) -> int:
    """The PostgreSQL backend pid of a SQLAlchemy connection (psycopg 3 knows it without a query)."""
    return int(connection.connection.dbapi_connection.info.backend_pid)


@contextmanager
def connection_dies_before_commit(admin_url: str) -> Iterator[list[int]]:
    """While open, the next commit of ``db.session`` finds its connection terminated (yields the killed pids)."""
    killed: list[int] = []

    def kill(session: Session) -> None:
        if not killed:
            killed.append(backend_pid(session.connection()))
            terminate_backend(admin_url, killed[0])

    event.listen(db.session, "before_commit", kill)
    try:
        yield killed
    finally:
        event.remove(db.session, "before_commit", kill)


@contextmanager
def connection_dies_at_next_query(admin_url: str) -> Iterator[list[int]]:
    """While open, the next SQL statement of the app's engine finds its connection terminated (after checkout, so
    the pool's pre-ping cannot see it coming)."""
    killed: list[int] = []

    def kill(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not killed:
            killed.append(backend_pid(conn))
            terminate_backend(admin_url, killed[0])

    engine = db.engine
    event.listen(engine, "before_cursor_execute", kill)
    try:
        yield killed
    finally:
        event.remove(engine, "before_cursor_execute", kill)
