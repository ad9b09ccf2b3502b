"""Hostile uploads through the ingestion pipeline: read in a limited child, never by the worker; two deaths fail."""
from __future__ import annotations

import io
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade

from course_bots.models import CourseBot
from course_bots.materials.models import Material
from course_bots.materials import jobs as ingest_worker, parse_sandbox
from course_bots.materials import operations as svc
from lti_tool.context import SessionToken, issue_token
from lti_tool.extensions import db, utcnow
from tests.test_retrieval.hostile_files import MIB, bomb_pdf

NOTES = "# Osmosis\n\n" + "Water moves across a semipermeable membrane towards higher solute concentration. " * 8
BOTH = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=["sqlite"])
def sapp(request: pytest.FixtureRequest, make_app, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A migrated app with one bot, low parse limits (300 MB, 2 s) and a parser that misbehaves by file name."""
    url = f"sqlite:///{tmp_path / 'sandbox.sqlite3'}"
    if request.param == "postgresql":
        import psycopg

        url = request.getfixturevalue("postgres_database")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    monkeypatch.setattr(parse_sandbox, "LOADER", "tests.test_retrieval.hostile_files:by_name")
    app = make_app(database_url=url, ingest_threads=0, embedding_model="hashing", ingest_stale_seconds=1,
                   parse_max_memory_mb=300, parse_max_seconds=2)
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="Bio"))
        db.session.commit()
    yield app
    worker = app.extensions.get("coursebots.ingest_worker")
    if worker is not None:
        worker.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def upload(app: Flask, name: str, data: bytes) -> int:
    with app.app_context():
        material_id = svc.upload_material(1, name, data).material.id
        db.session.commit()
        return material_id


def state(app: Flask, material_id: int) -> tuple[str, int, str | None, str | None]:
    with app.app_context():
        material = db.session.get(Material, material_id)
        assert material is not None
        db.session.refresh(material)
        return material.status, material.attempts, material.error_code, material.error_message


def count_children(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every child process started to read a file (its file name)."""
    started: list[str] = []
    real = parse_sandbox.load_document_isolated

    def counting(data: bytes, filename: str, *args: Any, **kwargs: Any) -> Any:
        started.append(filename)
        return real(data, filename, *args, **kwargs)

    monkeypatch.setattr(parse_sandbox, "load_document_isolated", counting)
    return started


@pytest.mark.parametrize("sapp", BOTH, indirect=True)
def test_a_pdf_bomb_fails_as_a_bomb_and_the_other_files_are_read(sapp: Flask) -> None:
    bomb = upload(sapp, "lecture.pdf", bomb_pdf(128 * MIB))  # the limit: a quarter of 300 MB
    notes = upload(sapp, "notes.md", NOTES.encode())
    with sapp.app_context():
        assert ingest_worker.run_pending() == 2
    status, _, code, message = state(sapp, bomb)
    assert (status, code) == ("failed", "archive_bomb")
    assert message is not None and "expands to more than 75 MB when unpacked" in message and "scan" not in message
    assert state(sapp, notes)[0] == "ready"


@pytest.mark.parametrize("sapp", BOTH, indirect=True)
@pytest.mark.parametrize("name, code, says", [
    ("segfault-slides.pdf", "parse_crashed", "The reader crashed on this file"),
    ("hog-slides.pdf", "parse_out_of_memory", "makes the reader run out of memory"),
    ("spin-slides.pdf", "parse_timeout", "takes too long to read"),
])
def test_a_file_that_kills_its_reader_twice_fails_and_nothing_else_is_touched(
        sapp: Flask, monkeypatch: pytest.MonkeyPatch, name: str, code: str, says: str) -> None:
    before = upload(sapp, "before.md", NOTES.encode())
    with sapp.app_context():
        ingest_worker.run_pending()
    hostile = upload(sapp, name, b"%PDF-1.4 not really")
    after = upload(sapp, "after.md", (NOTES + " Diffusion too.").encode())
    children = count_children(monkeypatch)
    with sapp.app_context():
        assert ingest_worker.run_pending() == 2  # this process survived both crashes and went on
    status, attempts, error_code, message = state(sapp, hostile)
    assert (status, error_code, attempts) == ("failed", code, 1)  # one job, not re-queued
    assert message is not None and says in message
    assert children == [name, name, "after.md"]  # read twice, each time in a fresh child, never in-process
    assert state(sapp, before)[0] == "ready" and state(sapp, after)[0] == "ready"
    with sapp.app_context():
        assert ingest_worker.recover_stale() == ([], [])  # failed stays failed: nobody reads it a third time
        assert ingest_worker.run_pending() == 0
    assert children == [name, name, "after.md"]


@pytest.mark.parametrize("sapp", BOTH, indirect=True)
def test_stale_recovery_fails_a_file_whose_reading_stopped_its_worker_twice(sapp: Flask) -> None:
    lost = upload(sapp, "lost.md", NOTES.encode())
    other = upload(sapp, "other.md", (NOTES + " Other.").encode())
    with sapp.app_context():
        material = db.session.get(Material, lost)
        assert material is not None
        material.status, material.attempts = "parsing", 2  # the worker died twice while reading it
        material.heartbeat_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
        assert ingest_worker.recover_stale() == ([], [lost])
    status, _, code, message = state(sapp, lost)
    assert (status, code) == ("failed", "worker_lost")
    assert message is not None and "stopped the worker twice" in message
    assert state(sapp, other)[0] == "queued"


def test_twenty_files_in_one_request_are_parsed_at_most_threads_at_a_time(
        make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(database_url=f"sqlite:///{tmp_path / 'batch.sqlite3'}", ingest_threads=2,
                   embedding_model="hashing", max_upload_mb=1)
    lock, running, peak = threading.Lock(), [0], [0]
    real = parse_sandbox.load_document_isolated

    def observed(*args: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(parse_sandbox, "load_document_isolated", observed)
    try:
        with app.app_context():
            upgrade()
            db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="B"))
            db.session.commit()
        now = int(time.time())
        claims = SessionToken(issuer="https://lms.example", deployment_id="1", bot_id=1, pseudonym="p" * 16,
                              roles=("instructor",), locale="en", expires_at=now + 600, launched_at=now)
        files = [(io.BytesIO(f"# Part {i}\n\n{NOTES} Number {i}.".encode()), f"part-{i}.md") for i in range(20)]
        response = app.test_client().post(
            "/api/v1/bots/1/materials", data={"file": files}, content_type="multipart/form-data",
            headers={"Authorization": f"Bearer {issue_token(app.config['SECRET_KEY'], claims)}"})
        assert response.status_code == 201, response.get_json()
        deadline = time.monotonic() + 300
        with app.app_context():
            while time.monotonic() < deadline:
                statuses = [m.status for m in svc.list_materials(1)]
                db.session.remove()
                if statuses.count("ready") == 20:
                    break
                time.sleep(0.2)
        assert statuses.count("ready") == 20
        assert 1 <= peak[0] <= 2  # never 20 at once: at most COURSEBOTS_INGEST_THREADS children
    finally:
        worker = app.extensions.get("coursebots.ingest_worker")
        if worker is not None:
            worker.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
