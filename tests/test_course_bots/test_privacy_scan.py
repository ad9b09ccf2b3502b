"""After a complete run, no personal string is anywhere: database tables, captured logs, Redis, written files.

The control run switches scrubbing off and shows the same scan finds the strings, so the scan cannot pass
vacuously. The chat issue extends :func:`simulate_run` with real launches and streamed answers.
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

from course_bots.privacy_scrub import Scrubber
from course_bots.services import consent
from course_bots.services import conversations as conv
from lti_tool.context import LaunchContext, decode_token, map_roles
from lti_tool.extensions import current_config, db

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


def test_complete_run_leaves_no_personal_data(scan_app: Flask, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    simulate_run(scan_app, outputs)
    assert _scan(scan_app, tmp_path, caplog, outputs) == {}
    # What teachers and admins received is scrubbed too, and still useful.
    assert _findings({"exports": "\n".join(outputs)}) == {}
    assert "Backpropagation" in outputs[1] and "[email]" in outputs[1] and "Student 1" in outputs[1]


def test_control_run_without_scrubbing_is_caught(scan_app: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(Scrubber, "scrub", lambda self, text: text or "")
    outputs: list[str] = []
    simulate_run(scan_app, outputs)
    findings = _scan(scan_app, tmp_path, caplog, outputs)
    assert {GIVEN, "Quennelbrück", "Quennelbrueck", EMAIL, "555 0123", MATRICULATION} <= set(findings["database"])
    if scan_app.extensions["coursebots.config"].is_sqlite:
        assert findings.get("files"), "the file scan reads the SQLite file, which holds the unscrubbed text"
    assert _findings({"exports": "\n".join(outputs)})
