"""The supervised RQ worker survives Redis going away: our own redis-server on a free port, stopped and started."""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import text

import course_bots.worker as rq_entry
from course_bots.materials import jobs, rq_worker
from course_bots.materials import operations as svc
from course_bots.models import CourseBot
from lti_tool.extensions import db

pytestmark = pytest.mark.redis

TEXT = "# Notes\n\n" + "Osmosis moves water across a membrane towards the higher solute concentration. " * 10


class RedisProcess:
    """A throwaway redis-server without persistence: a restart comes back empty, as after a crash."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Kill it (no shutdown save)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test on a free port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker_app(make_app, tmp_path: Path, own_redis: RedisProcess) -> Iterator[Flask]:
    """An app on SQLite whose jobs go to the test's own Redis, with one course."""
    app = make_app(database_url=f"sqlite:///{tmp_path / 'w.sqlite3'}", redis_url=own_redis.url, ingest_threads=0)
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="B"))
        db.session.commit()
    yield app
    assert rq_worker.supervised_app() is None
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def upload(app: Flask, name: str) -> int:
    """Upload a file and hand it to the workers, as the web process does."""
    with app.app_context():
        material_id = svc.upload_material(1, name, f"{TEXT}\n\n{name}".encode()).material.id  # not a duplicate
        db.session.commit()
        jobs.dispatch([material_id])
        db.session.remove()
        return material_id


def rows(app: Flask) -> list[tuple[str, str, int]]:
    """(file name, status, attempts) of every material."""
    with app.app_context(), db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT filename, status, attempts FROM material ORDER BY id"))]


def supervise(app: Flask, url: str) -> int:
    """The supervised worker in burst mode with short waits (RQ's in-process worker, so patches apply)."""
    from rq import SimpleWorker

    return rq_worker.supervise(url, app, burst=True, worker_class=SimpleWorker, backoff_s=0.2, max_backoff_s=0.5,
                               recovery=False)


def test_worker_waits_for_redis_and_picks_up_files_a_restart_lost(worker_app: Flask,
                                                                  own_redis: RedisProcess) -> None:
    upload(worker_app, "before.md")  # enqueued, then Redis dies and comes back empty
    own_redis.stop()
    upload(worker_app, "during.md")  # the enqueue fails: the file stays queued in the database
    threading.Timer(1.0, own_redis.start).start()
    restarts = supervise(worker_app, own_redis.url)  # starts while Redis is down
    assert restarts >= 1
    assert rows(worker_app) == [("before.md", "ready", 1), ("during.md", "ready", 1)]


def test_worker_started_again_after_redis_went_away_mid_job(worker_app: Flask, own_redis: RedisProcess,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    first = upload(worker_app, "first.md")
    original = rq_entry.process_material
    events: list[str] = []

    def redis_dies_during_the_job(material_id: int, worker: str) -> str:
        if material_id == first:
            own_redis.stop()  # the job's own work (the database) goes on; RQ's bookkeeping afterwards fails
            events.append("redis stopped")
            upload(worker_app, "uploaded-while-down.md")
            threading.Timer(1.0, own_redis.start).start()
        return original(material_id, worker)

    monkeypatch.setattr(rq_entry, "process_material", redis_dies_during_the_job)
    restarts = supervise(worker_app, own_redis.url)
    assert events == ["redis stopped"]
    assert restarts >= 1
    # each file read once: nothing lost, nothing ingested twice
    assert rows(worker_app) == [("first.md", "ready", 1), ("uploaded-while-down.md", "ready", 1)]


def test_enqueue_missing_skips_files_already_waiting(worker_app: Flask, own_redis: RedisProcess) -> None:
    waiting = upload(worker_app, "waiting.md")
    with worker_app.app_context():
        queue = jobs.rq_queue(own_redis.url)
        assert jobs.enqueue_missing(queue) == []
        queue.empty()
        assert jobs.enqueue_missing(queue) == [waiting]
        assert queue.count == 1
        db.session.remove()


def test_a_stop_request_ends_the_supervised_worker(worker_app: Flask, own_redis: RedisProcess) -> None:
    """SIGTERM (systemctl stop) while the worker waits for jobs ends it instead of starting a new one."""
    import signal

    from rq import SimpleWorker

    main = threading.main_thread().ident
    assert main is not None
    # to the main thread itself, so its blocking wait for jobs is interrupted (RQ's handler runs there)
    threading.Timer(1.0, signal.pthread_kill, args=(main, signal.SIGTERM)).start()
    restarts = rq_worker.supervise(own_redis.url, worker_app, worker_class=SimpleWorker, backoff_s=0.2,
                                   recovery=False)
    assert restarts == 0


def test_the_recovery_thread_enqueues_a_file_redis_lost_while_the_worker_kept_running(
        worker_app: Flask, own_redis: RedisProcess) -> None:
    from redis import Redis

    material_id = upload(worker_app, "lost.md")
    Redis.from_url(own_redis.url).flushdb()  # Redis restarted empty under a worker that never noticed
    stop = threading.Event()
    thread = threading.Thread(target=rq_worker._recovery_loop, args=(worker_app, own_redis.url, stop))
    thread.start()
    try:
        queue = jobs.rq_queue(own_redis.url)
        deadline = time.monotonic() + 30
        while queue.count == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [job.args[0] for job in queue.get_jobs()] == [material_id]
    finally:
        stop.set()
        thread.join(30)
