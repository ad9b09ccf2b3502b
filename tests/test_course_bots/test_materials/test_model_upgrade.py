"""After a change of the embedding model, materials are re-embedded in the background, searched lexically meanwhile."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade

from course_bots.materials import jobs
from course_bots.materials import operations as svc
from course_bots.materials.course_index import search_course
from course_bots.materials.models import Material
from course_bots.models import CourseBot
from lti_tool.extensions import db
from tests.test_course_bots.test_materials.test_course_index import PAGES, make_pdf


def _material() -> tuple[str, str | None]:
    """Status and embedding model of the one material (call inside an app context)."""
    material = db.session.scalars(db.select(Material)).one()
    db.session.refresh(material)
    return material.status, material.embedding_model


def _wait_for(app: Flask, model_id: str, seconds: float = 60) -> tuple[str, str | None]:
    """Poll until the material is ready with ``model_id`` (or the time is up)."""
    deadline = time.monotonic() + seconds
    while True:
        with app.app_context():
            state = _material()
            db.session.remove()
        if state == ("ready", model_id) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


@pytest.fixture
def old_install(make_app, tmp_path: Path) -> Iterator[str]:
    """A database whose course was ingested with the old model (``hashing-32``); yields its URL."""
    url = f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
    app = make_app(database_url=url, ingest_threads=0, embedding_model="hashing-32")
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title=""))
        db.session.commit()
        svc.upload_material(1, "Biology Lecture.pdf", make_pdf(PAGES))
        db.session.commit()
        jobs.run_pending()
        assert _material() == ("ready", "hashing-32")
        db.session.remove()
        db.engine.dispose()
    yield url


def test_queued_materials_are_searched_lexically_until_re_embedded(make_app, old_install: str) -> None:
    app = make_app(database_url=old_install, ingest_threads=0, embedding_model="hashing-64")
    with app.app_context():
        assert jobs.reindex_for_current_model() != []
        assert _material() == ("queued", "hashing-32")
        hits = search_course(1, "Krebs cycle mitochondria")
        assert hits and hits[0].chunk.position == 2 and "dense" not in hits[0].components
        assert jobs.run_pending() == 1
        assert _material() == ("ready", "hashing-64")
        hits = search_course(1, "Krebs cycle mitochondria")
        assert hits[0].chunk.position == 2 and "dense" in hits[0].components
        assert jobs.reindex_for_current_model() == []  # nothing outdated: nothing queued
        db.session.remove()
        db.engine.dispose()


def test_restarted_web_process_re_embeds_on_its_first_request(make_app, old_install: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The default in-process mode: no command, no upload; the first request starts it, once per process."""
    started: list[threading.Thread] = []
    real = jobs.reindex_in_background

    def counted(app: Flask) -> threading.Thread:
        started.append(real(app))
        return started[-1]

    monkeypatch.setattr(jobs, "reindex_in_background", counted)
    app = make_app(database_url=old_install, embedding_model="hashing-64", testing=False,
                   retention_purge_hours=0)
    try:
        client = app.test_client()
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        assert len(started) == 1
        assert _wait_for(app, "hashing-64") == ("ready", "hashing-64")
        with app.app_context():
            assert search_course(1, "Krebs cycle mitochondria")[0].chunk.position == 2
    finally:
        worker = app.extensions.get("coursebots.ingest_worker")
        if worker is not None:
            worker.stop()
        for thread in started:
            thread.join(10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.redis
def test_first_request_enqueues_outdated_materials_for_rq_workers(make_app, old_install: str,
                                                                  redis_url: str) -> None:
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    app = make_app(database_url=old_install, embedding_model="hashing-64", testing=False,
                   retention_purge_hours=0, redis_url=redis_url)
    try:
        assert app.test_client().get("/healthz").status_code == 200
        queue = jobs.rq_queue(redis_url)
        deadline = time.monotonic() + 30
        while queue.count == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queue.count == 1  # waiting for a worker, not for an unrelated job
        assert "coursebots.ingest_worker" not in app.extensions
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
