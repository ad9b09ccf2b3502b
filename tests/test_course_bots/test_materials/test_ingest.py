"""Ingestion outside the request: status transitions, a crashed worker's job, in-process threads and RQ."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select, text, update

from course_bots.materials import pipeline as ingest_pipeline, jobs as ingest_worker
from course_bots.materials import operations as svc
from course_bots.materials.models import Material
from course_bots.models import CourseBot
import course_bots.worker as rq_entry
from lti_tool.extensions import db, utcnow
from retrieval.embedders import HashingEmbedder
from retrieval.types import Vector
from tests.conftest import need_tesseract, scanned_pdf

ROOT = Path(__file__).resolve().parents[3]
TEXT = "\n\n".join(f"## Part {i}\n\n" + f"Topic {i} explains osmosis and diffusion across membranes. " * 20
                   for i in range(6))

T = TypeVar("T")


def _get(model: type[T], ident: object) -> T:
    """A row that must exist (typed, for mypy)."""
    found = db.session.get(model, ident)
    assert found is not None
    return found


@pytest.fixture(params=["sqlite"])
def iapp(request: pytest.FixtureRequest, make_app, tmp_path: Path) -> Iterator[Flask]:
    """A migrated app with one bot, hashing embeddings, no threads, a 1-second stale period."""
    url = f"sqlite:///{tmp_path / 'ingest.sqlite3'}"
    if request.param == "postgresql":
        import psycopg

        url = request.getfixturevalue("postgres_database")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    app = make_app(database_url=url, ingest_threads=0, embedding_model="hashing", ingest_stale_seconds=1)
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


def queue_text(app: Flask, name: str = "membranes.md", body: str = TEXT) -> int:
    with app.app_context():
        result = svc.upload_material(1, name, body.encode("utf-8"))
        db.session.commit()
        return result.material.id


def status_of(app: Flask, material_id: int) -> tuple[str, int, int, str | None]:
    """Read through a separate connection, as the teacher's page would while the worker runs."""
    with app.app_context(), db.engine.connect() as conn:
        row = conn.execute(text("SELECT status, progress_done, progress_total, error_code FROM material "
                                "WHERE id = :id"), {"id": material_id}).one()
        return row[0], row[1], row[2], row[3]


@pytest.mark.parametrize("iapp", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_status_goes_queued_parsing_embedding_ready(iapp: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    material_id = queue_text(iapp)
    seen = [status_of(iapp, material_id)[0]]
    real_load = ingest_pipeline.parse_material

    def observing_load(*args, **kwargs):
        seen.append(status_of(iapp, material_id)[0])
        return real_load(*args, **kwargs)

    class ObservingEmbedder(HashingEmbedder):
        def embed_passages(self, texts: Sequence[str]) -> Vector:
            state = status_of(iapp, material_id)
            seen.append(f"{state[0]} {state[1]}/{state[2]}")
            return super().embed_passages(texts)

    monkeypatch.setattr(ingest_pipeline, "parse_material", observing_load)
    monkeypatch.setattr(ingest_pipeline, "EMBED_BATCH", 2)
    iapp.extensions["coursebots.embedder"] = ObservingEmbedder(64)
    with iapp.app_context():
        assert ingest_worker.run_pending() == 1
    final = status_of(iapp, material_id)
    assert seen[:3] == ["queued", "parsing", "embedding 0/6"]
    assert seen[3:] == ["embedding 2/6", "embedding 4/6"]
    assert final == ("ready", 6, 6, None)


def test_a_scan_shows_pages_read_while_ocr_runs(iapp: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    need_tesseract()
    with iapp.app_context():
        material_id = svc.upload_material(1, "scan.pdf", scanned_pdf([["Osmosis moves water across membranes."],
                                                                      ["Diffusion spreads molecules evenly."]])
                                          ).material.id
        db.session.commit()
    seen: list[tuple[str, int, int, str | None]] = []
    real = ingest_pipeline._reading_progress

    def observing(material: int, done: int, total: int) -> None:
        real(material, done, total)
        seen.append(status_of(iapp, material_id))  # what the teacher's page polls meanwhile

    monkeypatch.setattr(ingest_pipeline, "_reading_progress", observing)
    iapp.extensions["coursebots.embedder"] = HashingEmbedder(64)
    with iapp.app_context():
        assert ingest_worker.run_pending() == 1
    assert seen == [("parsing", 1, 2, None), ("parsing", 2, 2, None)]
    assert status_of(iapp, material_id)[0] == "ready"


@pytest.mark.parametrize("iapp", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_crashed_worker_job_is_retried_then_ingested(iapp: Flask, tmp_path: Path) -> None:
    material_id = queue_text(iapp)
    script = textwrap.dedent(f"""
        import os
        from lti_tool import create_app
        from course_bots.materials.pipeline import process_material
        from retrieval.embedders import HashingEmbedder

        class Crash(HashingEmbedder):
            def embed_passages(self, texts):
                os._exit(3)  # the worker process dies mid-job: no exception handler runs

        app = create_app()
        app.extensions["coursebots.embedder"] = Crash(64)
        with app.app_context():
            process_material({material_id}, "crashing-worker")
    """)
    env = dict(os.environ, COURSEBOTS_DATABASE_URL=iapp.config["SQLALCHEMY_DATABASE_URI"],
               COURSEBOTS_INSTANCE_PATH=iapp.instance_path, COURSEBOTS_SECRET_KEY="test-secret-key-" + "x" * 32,
               COURSEBOTS_PSEUDONYM_KEY="p" * 48, COURSEBOTS_EMBEDDING_MODEL="hashing",
               COURSEBOTS_INGEST_THREADS="0", COURSEBOTS_INGEST_STALE_SECONDS="1")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, timeout=120, capture_output=True)
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    assert status_of(iapp, material_id)[0] == "embedding"  # left behind by the dead worker
    with iapp.app_context():
        db.session.execute(update(Material).values(heartbeat_at=utcnow()))  # as if it beat just now
        db.session.commit()
        assert ingest_worker.recover_stale() == ([], [])  # a fresh heartbeat: the worker may be alive
        time.sleep(1.3)
        assert ingest_worker.recover_stale() == ([material_id], [])
        assert status_of(iapp, material_id)[0] == "queued"
        ingest_worker.run_pending()
        material = _get(Material, material_id)
        assert (material.status, material.attempts) == ("ready", 2)


@pytest.mark.parametrize("iapp", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_job_that_keeps_crashing_ends_failed_not_stuck(iapp: Flask) -> None:
    material_id = queue_text(iapp)
    with iapp.app_context():
        material = _get(Material, material_id)
        material.status, material.attempts = "parsing", ingest_worker.MAX_ATTEMPTS
        material.heartbeat_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
        assert ingest_worker.recover_stale() == ([], [material_id])
    state = status_of(iapp, material_id)
    assert state[0] == "failed" and state[3] == "worker_lost"


def test_deleted_while_ingesting_stops_quietly(iapp: Flask) -> None:
    material_id = queue_text(iapp)

    class DeletingEmbedder(HashingEmbedder):
        def embed_passages(self, texts: Sequence[str]) -> Vector:
            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM material WHERE id = :id"), {"id": material_id})
            return super().embed_passages(texts)

    iapp.extensions["coursebots.embedder"] = DeletingEmbedder(64)
    with iapp.app_context():
        assert ingest_pipeline.process_material(material_id, "w") == "skipped"
        assert db.session.scalars(select(Material)).all() == []


def test_in_process_thread_ingests_after_upload(make_app, tmp_path: Path) -> None:
    app = make_app(database_url=f"sqlite:///{tmp_path / 'thread.sqlite3'}", ingest_threads=1,
                   embedding_model="hashing")
    try:
        with app.app_context():
            upgrade()
            db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="B"))
            db.session.commit()
            material_id = svc.upload_material(1, "notes.md", TEXT.encode()).material.id
            db.session.commit()
            ingest_worker.dispatch([material_id])
        deadline = time.monotonic() + 30
        while status_of(app, material_id)[0] != "ready" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_of(app, material_id)[0] == "ready"
    finally:
        worker = app.extensions.get("coursebots.ingest_worker")
        if worker is not None:
            worker.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.redis
def test_rq_worker_ingests_queued_material(make_app, tmp_path: Path, redis_url: str) -> None:
    from redis import Redis
    from rq import SimpleWorker

    Redis.from_url(redis_url).flushdb()
    app = make_app(database_url=f"sqlite:///{tmp_path / 'rq.sqlite3'}", redis_url=redis_url, ingest_threads=0,
                   embedding_model="hashing")
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="B"))
        db.session.commit()
        material_id = svc.upload_material(1, "notes.md", TEXT.encode()).material.id
        db.session.commit()
        ingest_worker.dispatch([material_id])
        queue = ingest_worker.rq_queue(redis_url)
        assert queue.count == 1
    assert "coursebots.ingest_worker" not in app.extensions  # no in-process thread when Redis is configured
    rq_entry._app = app  # the worker process would build this app from the same environment
    try:
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        rq_entry._app = None
    assert status_of(app, material_id)[0] == "ready"
    with app.app_context():  # the web process died between commit and enqueue: recovery enqueues it once
        lost_id = svc.upload_material(1, "lost.md", b"# Lost\n\nNobody enqueued this file.").material.id
        db.session.execute(update(Material).where(Material.id == lost_id)
                           .values(updated_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        assert ingest_worker.recover_stale() == ([lost_id], [])
        assert ingest_worker.recover_stale() == ([], [])
        assert queue.count == 1
        db.session.remove()
        db.engine.dispose()


def test_upload_succeeds_while_redis_is_down(make_app, tmp_path: Path) -> None:
    app = make_app(database_url=f"sqlite:///{tmp_path / 'down.sqlite3'}", redis_url="redis://127.0.0.1:1/0",
                   ingest_threads=0, embedding_model="hashing")
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="B"))
        db.session.commit()
        material_id = svc.upload_material(1, "notes.md", TEXT.encode()).material.id
        db.session.commit()
        ingest_worker.dispatch([material_id])  # logged, not raised: recovery enqueues it once Redis is back
        assert _get(Material, material_id).status == "queued"
        db.session.remove()
        db.engine.dispose()
