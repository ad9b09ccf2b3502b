"""After a complete run, no personal string is anywhere: database tables, captured logs, Redis, written files.

The control run switches scrubbing off and shows the same scan finds the strings, so the scan cannot pass
vacuously. The run launches through the product's launch handler, asks through the service and through the streamed
chat API (a scripted model echoes the personal data back), and exports as student, teacher and admin.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import MetaData, select, text

from course_bots import backends
from course_bots.chat import conversations as conv, operations as chat
from course_bots.chat.models import Feedback, Message
from course_bots.llm.base import DoneEvent, TokenEvent
from course_bots.privacy import consent
from course_bots.privacy_rules import Scrubber
from lti_tool.context import LaunchContext, decode_token, map_roles
from lti_tool.extensions import current_config, db
from retrieval.types import Chunk, Locator, SearchHit

ISSUER = "https://moodle.scan.example"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
SUB = "moodle-user-8675309"
GIVEN, FAMILY = "Xaverine", "Quennelbrück-Vogt"
EMAIL = "xaverine.quennelbrueck@uni-scan.example"
PHONE_DIGITS = "1715550123"
MATRICULATION = "MAT-2024-77881"
# What must never be found (case-insensitive), in the spellings a scan would meet.
PERSONAL = (SUB, GIVEN, "Quennelbrück", "Quennelbrueck", "Vogt", EMAIL, "uni-scan", PHONE_DIGITS, "555 0123",
            MATRICULATION)
QUESTIONS = (
    f"Hallo, ich bin {GIVEN} {FAMILY} ({EMAIL}). Was ist Backpropagation?",
    f"Ruf mich an: +49 171 555 0123 — oder frag Frau QUENNELBRÜCK-VOGT. Matrikel {MATRICULATION}.",
    "Ist xaverines Lösung richtig, und was meint Herrn Quennelbrueck-Vogts Skript zu Gradienten?",
    f"Mein Freund schreibt an {EMAIL.upper()} — darf ich das? Vogts Notizen sagen ja.",
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def scan_app(request: pytest.FixtureRequest, make_app,  # type: ignore[no-untyped-def]
             redis_url: str) -> Iterator[Flask]:
    """The app with an institution pattern, Redis, and k=1 so exports open; migrated to head."""
    url = None
    if request.param == "postgresql":
        import psycopg

        url = request.getfixturevalue("postgres_database")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DROP SCHEMA public CASCADE")
            connection.execute("CREATE SCHEMA public")
    overrides = {"pii_extra_patterns": (r"\bMAT-\d{4}-\d{5}\b",), "redis_url": redis_url, "privacy_min_students": 1}
    if url:
        overrides["database_url"] = url
    application = make_app(**overrides)
    with application.app_context():
        upgrade()
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield application
    client.flushdb()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _launch(app: Flask, roles: list[str], sub: str) -> str:
    context = LaunchContext(issuer=ISSUER, client_id="client", deployment_id="1", context_id="ki-101",
                            context_title="Einführung in die KI", resource_link_id="rl1",
                            message_type="LtiResourceLinkRequest", roles=map_roles(roles), locale="de-DE",
                            user_sub=sub, names=(f"{GIVEN} {FAMILY}", GIVEN, FAMILY))
    with app.test_request_context("/lti/launch", method="POST"):
        html = app.extensions["coursebots.launch_handler"](context).get_data(as_text=True)
    match = re.search(r'name="coursebots-token" content="([^"]+)"', html)
    assert match, "the launch page carries the session token"
    return match.group(1)


class EchoingModel:
    """A model backend that repeats the student's personal data back (the worst case for stored answers)."""

    name = "echoing"

    def stream(self, messages, params, request_id=None):  # type: ignore[no-untyped-def]
        for piece in ("Hallo ", GIVEN, " ", FAMILY, ", ich antworte an ", EMAIL, ": Gradienten [1]."):
            yield TokenEvent(piece)
        yield DoneEvent("stop")

    def cancel(self, request_id: str) -> None:
        """Nothing to cancel."""

    def count_tokens(self, messages) -> int:  # type: ignore[no-untyped-def]
        return 10

    def health(self) -> None:
        return None


@pytest.fixture
def real_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chat API with a fake retrieval hit (quoting an e-mail) and the echoing model."""
    passage = f"Sprechstunde: {GIVEN} {FAMILY}, {EMAIL}. Gradienten zeigen bergauf."
    hit = SearchHit(Chunk("c1", "7", "Skript.pdf", passage, position=2, position_end=2, locator=Locator.PAGE), 0.9,
                    rank=1)
    monkeypatch.setattr(chat, "default_search", lambda bot_id, query, k: [hit])
    monkeypatch.setattr(backends, "backend_for", lambda entry: EchoingModel())


def _ask_through_chat_api(app: Flask, headers: dict[str, str], bot_id: int) -> None:
    client = app.test_client()
    for index, question in enumerate(QUESTIONS[:2]):
        for _attempt in range(2):  # a retry after a network error must not store the question twice
            response = client.post(f"/api/v1/bots/{bot_id}/chat", headers=headers,
                                   json={"question": question, "client_id": f"api-{index}",
                                         "conversation_id": None})
            assert response.status_code == 200, response.get_data(as_text=True)
            body = response.get_data(as_text=True)
        done = [json.loads(block.split("data: ", 1)[1]) for block in body.strip().split("\n\n")
                if block.startswith("event: done")]
        assert done, body
        message_id = done[0]["message_id"]
        feedback = client.post(f"/api/v1/bots/{bot_id}/messages/{message_id}/feedback", headers=headers,
                               json={"value": "down", "comment": f"{GIVEN} meint: schreib an {EMAIL}"})
        assert feedback.status_code in (200, 201, 204), feedback.get_data(as_text=True)


def simulate_run(app: Flask, runner_output: list[str]) -> None:
    """Launches, consent, questions with personal data, answers echoing it, feedback, exports and admin export."""
    student_token = _launch(app, [LEARNER], SUB)
    teacher_token = _launch(app, [INSTRUCTOR], "moodle-teacher-1")
    client = app.test_client()
    student_headers = {"Authorization": f"Bearer {student_token}"}
    with app.app_context():
        student = decode_token(current_config().secret_key, student_token)
        consent.record_consent(student, True, consent.current_notice(ISSUER, "de").version)
        conversation = None
        for index, question in enumerate(QUESTIONS):
            q = conv.record_question(student, conversation, f"client-{index}", question)
            conversation = q.session_id
            conv.record_question(student, conversation, f"client-{index}", question)  # a network retry
            answer = conv.record_answer(
                student, q.id, f"Gern, {GIVEN}! Ich schreibe an {EMAIL}. Backpropagation ist …",
                citations=[{"n": 1, "document": "skript.pdf", "page": 3, "quote": f"Kontakt: {EMAIL}"}],
                prompt_tokens=120, completion_tokens=40, model_id="tiny")
            conv.record_feedback(student, answer.id, "down", f"Falsch, {GIVEN}s Tutor ist {FAMILY}, {EMAIL}")
        failed = conv.record_question(student, conversation, "client-fail", f"Noch eine Frage von {GIVEN}")
        conv.record_failure(student, failed.id, "backend_timeout", partial_text=f"Liebe {GIVEN}, ")
        db.session.commit()
        bot_id = student.bot_id
    _ask_through_chat_api(app, student_headers, bot_id)
    for response in (client.get("/api/v1/consent", headers=student_headers),
                     client.get("/api/v1/me/export", headers=student_headers)):
        assert response.status_code == 200
    teacher_headers = {"Authorization": f"Bearer {teacher_token}"}
    for url in (f"/api/v1/bots/{bot_id}/logs", f"/api/v1/bots/{bot_id}/logs/export?format=csv",
                f"/api/v1/bots/{bot_id}/logs/export?format=json", f"/api/v1/bots/{bot_id}/audit"):
        response = client.get(url, headers=teacher_headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        runner_output.append(response.get_data(as_text=True))
    result = app.test_cli_runner().invoke(args=["privacy", "export", "--issuer", ISSUER, "--user", SUB])
    assert result.exit_code == 0 and json.loads(result.output)["courses"]
    runner_output.append(result.output)
    assert app.test_cli_runner().invoke(args=["privacy", "purge"]).exit_code == 0


def _database_text(app: Flask) -> str:
    chunks = []
    with app.app_context():
        metadata = MetaData()
        metadata.reflect(bind=db.engine)  # every table that exists, also ones no model declares
        with db.engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(select(table)):
                    chunks.append(" ".join(repr(value) for value in row))
            if db.engine.dialect.name == "sqlite":
                connection.execute(text("PRAGMA wal_checkpoint(FULL)"))
    return "\n".join(chunks)


def _files_text(app: Flask, tmp_path: Path) -> str:
    chunks = []
    for path in tmp_path.rglob("*"):  # the instance folder, uploads, and the SQLite file with its WAL
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def _redis_text(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url)
    chunks = []
    for key in client.scan_iter(count=500):
        chunks.append(key.decode("utf-8", errors="replace"))
        kind = client.type(key).decode()
        if kind == "string":
            chunks.append((client.get(key) or b"").decode("utf-8", errors="replace"))
        elif kind == "hash":
            chunks.append(repr(client.hgetall(key)))
        elif kind == "list":
            chunks.append(repr(client.lrange(key, 0, -1)))
        elif kind in ("set", "zset"):
            chunks.append(repr(client.smembers(key) if kind == "set" else client.zrange(key, 0, -1)))
        elif kind == "stream":
            chunks.append(repr(client.xrange(key)))
    return "\n".join(chunks)


def _findings(places: dict[str, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for where, content in places.items():
        lowered = content.lower()
        hits = [needle for needle in PERSONAL if needle.lower() in lowered]
        if hits:
            found[where] = hits
    return found


def _scan(app: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture, outputs: list[str]) -> dict[str, list[str]]:
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    return _findings({"database": _database_text(app), "logs": logs, "files": _files_text(app, tmp_path),
                      "redis": _redis_text(app.extensions["coursebots.config"].redis_url)})


def test_complete_run_leaves_no_personal_data(scan_app: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                              real_chat: None) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    simulate_run(scan_app, outputs)
    assert _scan(scan_app, tmp_path, caplog, outputs) == {}
    with scan_app.app_context():
        questions = db.session.scalars(select(Message).where(Message.role == "user")).all()
        assert len(questions) == len(QUESTIONS) + 1 + 2  # service run + failed one + two via the chat API, no doubles
        answers = db.session.scalars(select(Message).where(Message.role == "assistant")).all()
        assert sum("[email]" in a.text and "[name]" in a.text for a in answers) >= 2 + len(QUESTIONS)
        assert len(db.session.scalars(select(Feedback)).all()) == len(QUESTIONS) + 2
    # What teachers and admins received is scrubbed too, and still useful.
    assert _findings({"exports": "\n".join(outputs)}) == {}
    assert "Backpropagation" in outputs[1] and "[email]" in outputs[1] and "Student 1" in outputs[1]


def test_control_run_without_scrubbing_is_caught(scan_app: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch, real_chat: None) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(Scrubber, "scrub", lambda self, text: text or "")
    outputs: list[str] = []
    simulate_run(scan_app, outputs)
    findings = _scan(scan_app, tmp_path, caplog, outputs)
    assert {GIVEN, "Quennelbrück", "Quennelbrueck", EMAIL, "555 0123", MATRICULATION} <= set(findings["database"])
    if scan_app.extensions["coursebots.config"].is_sqlite:
        assert findings.get("files"), "the file scan reads the SQLite file, which holds the unscrubbed text"
    assert _findings({"exports": "\n".join(outputs)})
