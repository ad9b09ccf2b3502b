"""A database connection lost under a request answers 503 with Retry-After (API and pages), and the next works."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, TimeoutError as PoolTimeoutError

from lti_tool.app import database_unavailable
from lti_tool.extensions import db
from tests.db_faults import connection_dies_at_next_query, teacher

LOGIN = {"iss": "https://moodle.example", "login_hint": "hint-4711", "client_id": "c",
         "target_link_uri": "http://localhost:5000/lti/launch"}
TRACES = ("Traceback", "sqlalchemy", "psycopg", "SELECT", 'File "/')


def materials(app: Flask) -> Any:
    """The teacher's material list of course 1 (an API request that reads the database)."""
    return app.test_client().get("/api/v1/bots/1/materials", headers=teacher(app))


def login(app: Flask) -> Any:
    """An OIDC login of an unregistered LMS (an HTML page that reads the database)."""
    return app.test_client().post("/lti/login", data=LOGIN)


def assert_unavailable(response: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code == 503
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    body = response.get_data(as_text=True)
    assert not [trace for trace in TRACES if trace in body]
    assert "Traceback" not in caplog.text and "4711" not in caplog.text  # no statement, parameters or traceback


@pytest.mark.postgres
def test_a_connection_killed_mid_request_is_503_and_the_next_request_works(
        course: Callable[..., Flask], postgres_server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    app = course(database="postgresql")
    assert materials(app).status_code == 200  # the pool holds a connection that is about to die
    with app.app_context(), connection_dies_at_next_query(postgres_server_url) as killed:
        response = materials(app)
    assert killed
    assert_unavailable(response, caplog)
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert materials(app).status_code == 200  # the pool replaced the dead connection

    with app.app_context(), connection_dies_at_next_query(postgres_server_url) as killed:
        page = login(app)
    assert killed
    assert_unavailable(page, caplog)
    assert page.mimetype == "text/html" and "<code>database_unavailable</code>" in page.get_data(as_text=True)
    assert login(app).status_code == 403  # unknown_platform: the database answered


def test_an_invalidated_connection_on_sqlite_is_503_too(course: Callable[..., Flask],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    app = course()
    failed: list[str] = []

    def lose_connection(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not failed:
            failed.append(statement)
            raise OperationalError(statement, {"pseudonym": "pseudonym-4711"}, ConnectionError("gone"),
                                   connection_invalidated=True)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lose_connection)
        try:
            with caplog.at_level(logging.WARNING):
                response = materials(app)
        finally:
            event.remove(db.engine, "before_cursor_execute", lose_connection)
    assert failed
    assert_unavailable(response, caplog)
    error = response.get_json()["error"]
    assert error["code"] == "database_unavailable" and "try again" in error["message"]
    assert materials(app).status_code == 200


def test_which_errors_mean_the_database_is_unavailable() -> None:
    assert database_unavailable(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert database_unavailable(DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))
    assert database_unavailable(PoolTimeoutError("QueuePool limit reached"))
    try:
        try:
            raise OperationalError("SELECT 1", {}, Exception("gone"))
        except OperationalError as exc:
            raise RuntimeError("a service wrapped it") from exc
    except RuntimeError as wrapped:
        assert database_unavailable(wrapped)
    assert not database_unavailable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not database_unavailable(ValueError("a bug"))
