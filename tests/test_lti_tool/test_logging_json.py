"""Structured logs: one JSON object per line with the request's id, and nothing personal in them.

A launch and a chat (with an answer, a not-covered refusal, an answer with an e-mail in the question and the
metrics scrape) are logged at DEBUG through the JSON formatter; the output must name none of the test users.
"""
from __future__ import annotations

import io
import json
import logging
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from coursebots_tests_lti_platform import LEARNER, FakePlatform  # loaded by conftest.py
from course_bots import backends
from course_bots.chat import operations as chat
from course_bots.llm.extractive import ExtractiveBackend
from course_bots.models import CourseBot
from course_bots.privacy import consent
from lti_tool import logging_json
from lti_tool.extensions import db
from retrieval.types import Chunk, Locator, SearchHit
from tests.test_course_bots.conftest import bearer, make_session

SUB = "lti-user-5f0c93ab71"
PERSONAL = ("Lovelace", "ada@example.edu", "Anna-Lena", "Müller", "anna.mueller@uni.example", SUB, "user-42")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged while the test runs (DEBUG and up), in the JSON format."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging_json.JsonFormatter())
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("lti_tool", "course_bots", "retrieval", "")}
    root.addHandler(handler)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line as JSON (each must parse)."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_line_is_one_json_object_with_the_request_id(app: Flask, json_log: io.StringIO) -> None:
    app.test_client().get("/healthz", headers={"X-Request-Id": "req-abc"})
    [access] = [e for e in lines(json_log) if e["logger"] == logging_json.ACCESS_LOGGER]
    assert access["request_id"] == "req-abc" and access["route"] == "/healthz"
    assert access["status"] == 200 and access["method"] == "GET" and isinstance(access["duration_ms"], float)
    assert {"time", "level", "message"} <= set(access)
    logging.getLogger("course_bots.test").info("outside a request")
    outside = lines(json_log)[-1]
    assert outside["message"] == "outside a request" and "request_id" not in outside


def test_exceptions_stay_inside_their_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info())
    text = logging_json.JsonFormatter().format(record)
    assert "\n" not in text and "ValueError" in json.loads(text)["exception"]


def test_configure_json_formats_a_plain_stream_handler() -> None:
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        root.handlers = []
        logging_json.configure("json", "INFO")
        assert isinstance(root.handlers[0].formatter, logging_json.JsonFormatter)
        root.handlers = []
        logging_json.configure("text", "INFO")
        assert not isinstance(root.handlers[0].formatter, logging_json.JsonFormatter)
    finally:
        root.handlers = saved


def test_launch_and_chat_log_nothing_personal(app: Flask, client: FlaskClient, registered_platform: FakePlatform,
                                              json_log: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    # A launch whose user id, names and e-mail are distinctive.
    preflight = registered_platform.login(client)
    claims = registered_platform.claims(preflight, LEARNER)
    claims.update(sub=SUB, name="Ada Lovelace", given_name="Ada", family_name="Lovelace", email="ada@example.edu")
    response = registered_platform.post_launch(client, registered_platform.sign(claims), preflight.state)
    assert response.status_code == 200, response.data
    bad = registered_platform.claims(registered_platform.login(client), LEARNER)
    bad.update(sub=SUB, email="ada@example.edu", aud="someone-else")
    assert registered_platform.post_launch(client, registered_platform.sign(bad), None).status_code >= 400

    # A chat of another student of the same course, through the API.
    def search(bot_id: int, query: str, k: int) -> list[SearchHit]:
        if "weather" in query:
            return []
        chunk = Chunk("c1", "7", "Lecture 3.pdf", "The learning rate controls the step size.", position=4,
                      position_end=4, locator=Locator.PAGE)
        return [SearchHit(chunk, 0.9, rank=1)]

    monkeypatch.setattr(chat, "default_search", search)
    monkeypatch.setattr(backends, "backend_for", lambda entry: ExtractiveBackend())
    with app.app_context():
        bot = db.session.query(CourseBot).filter_by(context_id="course-42").one()
        student = make_session(bot, sub="user-42", names=("Anna-Lena Müller", "Anna-Lena", "Müller"))
        consent.record_consent(student, True, consent.current_notice(student.issuer, student.locale).version)
        db.session.commit()
        headers, bot_id = bearer(student), bot.id
    for number, question in enumerate(("What does the learning rate control?", "What is the weather today?",
                                       "I am Anna-Lena Müller, anna.mueller@uni.example: what is the learning rate?")):
        answered = client.post(f"/api/v1/bots/{bot_id}/chat", headers=headers,
                               json={"question": question, "client_id": f"q-{number}"})
        assert answered.status_code == 200
        assert "event: done" in answered.get_data(as_text=True)
    assert client.get("/metrics").status_code == 200

    entries = lines(json_log)
    assert any(e.get("route") == "/lti/launch" for e in entries)
    assert any(e.get("route") == "/api/v1/bots/<int:bot_id>/chat" and e.get("status") == 200 for e in entries)
    assert any("launch rejected" in e["message"] for e in entries)
    assert all(e.get("request_id") for e in entries if e.get("route"))
    text = json_log.getvalue()
    found = [p for p in PERSONAL if p.lower() in text.lower()]
    assert found == [], f"personal data in the logs: {found}"
