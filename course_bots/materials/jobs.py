"""Where ingestion runs: never in the request. In-process threads by default, RQ workers with Redis.

The ``material`` row is the job's state; claiming it is one atomic ``UPDATE ... WHERE status='queued'``, so
duplicate deliveries (a re-enqueued RQ job, two in-process workers) are harmless. A worker heartbeats while it
works; :func:`recover_stale` (run when a worker starts and periodically) re-queues materials whose worker went
silent, up to :data:`MAX_ATTEMPTS` (:data:`MAX_PARSE_ATTEMPTS` when it went silent while reading the file), then
marks them failed — a job is never stuck, and a file that kills its reader is not read a third time. Files are
read in limited child processes (:mod:`course_bots.materials.parse_sandbox`), so a hostile file kills a child,
not this worker.

With ``COURSEBOTS_REDIS_URL`` set, run job workers with::

    flask --app lti_tool materials rq-worker

(with the same ``COURSEBOTS_*`` environment as the web app): :func:`course_bots.worker.supervise` starts a new RQ
worker whenever Redis went away and came back, and :func:`enqueue_missing` hands it the files a Redis restart lost.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from datetime import timedelta
from typing import Any, Iterable

from flask import Flask, current_app
from sqlalchemy import or_, select, update

from course_bots.materials.models import Material, MaterialStatus
from course_bots.materials.course_index import get_embedder
from course_bots.materials.operations import reindex_outdated
from course_bots.materials.pipeline import process_material
from lti_tool.extensions import current_config, db, on_first_request_of_each_process, utcnow

log = logging.getLogger(__name__)

QUEUE_NAME = "coursebots"
JOB_FUNCTION = "course_bots.worker.ingest_job"
MAX_ATTEMPTS = 3
JOB_TIMEOUT_SECONDS = 3600
MAX_PARSE_ATTEMPTS = 2  # a worker lost while reading the file (not embedding it) twice: the file is failed
PARSE_LOST_MESSAGE = ("Reading this file stopped the worker twice (it probably needs too much memory). Save it "
                      "again from its program or print it to a new PDF (or split it), and upload that.")
LOST_MESSAGE = ("Processing this file stopped unexpectedly several times. Try re-indexing it; if it keeps "
                "failing, split the file into smaller parts or contact your administrator.")


def worker_id(kind: str = "thread") -> str:
    """Identifies this worker in the material row (host, process, thread)."""
    return f"{kind}:{socket.gethostname()[:64]}:{os.getpid()}:{threading.get_ident() % 100000}"


def recover_stale(bot_id: int | None = None) -> tuple[list[int], list[int]]:
    """Re-queue materials whose worker stopped heartbeating (or fail them after MAX_ATTEMPTS); commits.

    Returns (re-queued ids, failed ids). Re-queued ones are dispatched again.
    """
    config = current_config()
    cutoff = utcnow() - timedelta(seconds=config.ingest_stale_seconds)
    query = select(Material).where(Material.status.in_(MaterialStatus.ACTIVE),
                                   or_(Material.heartbeat_at.is_(None), Material.heartbeat_at < cutoff))
    if bot_id is not None:
        query = query.where(Material.bot_id == bot_id)
    retried, failed = [], []
    for material in db.session.scalars(query.with_for_update(skip_locked=True)
                                       if not config.is_sqlite else query):
        if material.status == MaterialStatus.PARSING and material.attempts >= MAX_PARSE_ATTEMPTS:
            # Reading this file stopped its worker twice: a third try would only stop another one.
            material.status = MaterialStatus.FAILED
            material.error_code, material.error_message = "worker_lost", PARSE_LOST_MESSAGE
            failed.append(material.id)
        elif material.attempts >= MAX_ATTEMPTS:
            material.status = MaterialStatus.FAILED
            material.error_code, material.error_message = "worker_lost", LOST_MESSAGE
            failed.append(material.id)
        else:
            material.status = MaterialStatus.QUEUED
            retried.append(material.id)
        material.worker_id = None
        material.heartbeat_at = None
    db.session.commit()
    if retried or failed:
        log.warning("recovered stale ingestion jobs: %d re-queued, %d failed", len(retried), len(failed))
    if config.redis_url:
        # A queued material whose enqueue was lost (web process died after commit) is enqueued again.
        old = select(Material.id).where(Material.status == MaterialStatus.QUEUED, Material.updated_at < cutoff)
        if bot_id is not None:
            old = old.where(Material.bot_id == bot_id)
        lost = [i for i in db.session.scalars(old) if i not in retried]
        if lost:  # touched, so the same file is enqueued again at most once per stale period
            db.session.execute(update(Material).where(Material.id.in_(lost)).values(updated_at=utcnow()))
            db.session.commit()
        retried += lost
    if retried:
        dispatch(retried)
    return retried, failed


def enqueue_missing(queue: Any) -> list[int]:
    """Enqueue every queued material that has no job waiting in ``queue`` (Redis restarted empty); returns them."""
    waiting = set()
    for job in queue.get_jobs():
        if job is not None and job.func_name == JOB_FUNCTION and job.args:
            waiting.add(job.args[0])
    ids = [i for i in db.session.scalars(select(Material.id).where(Material.status == MaterialStatus.QUEUED)
                                         .order_by(Material.id)) if i not in waiting]
    for material_id in ids:
        _enqueue(queue, material_id)
    return ids


def _enqueue(queue: Any, material_id: int) -> None:
    """One ingestion job on the RQ queue."""
    queue.enqueue(JOB_FUNCTION, material_id, job_timeout=JOB_TIMEOUT_SECONDS,
                  description=f"ingest material {material_id}")


def reindex_for_current_model() -> list[int]:
    """Queue every ready material embedded with another model than the configured one (once per worker start)."""
    ids = reindex_outdated(get_embedder().model_id)
    db.session.commit()
    if ids:
        log.warning("the embedding model changed: %d material(s) queued for re-indexing", len(ids))
        dispatch(ids)
    return ids


def reindex_in_background(app: Flask) -> threading.Thread:
    """Run :func:`reindex_for_current_model` in a daemon thread: a web process never waits for it."""

    def run() -> None:
        with app.app_context():
            try:
                reindex_for_current_model()
            except Exception as exc:  # the database may not be migrated yet; the next process start retries
                log.warning("could not check for materials of an older embedding model: %s", type(exc).__name__)
                db.session.rollback()
            finally:
                db.session.remove()

    thread = threading.Thread(target=run, name="coursebots-model-upgrade", daemon=True)
    thread.start()
    return thread


def init_model_upgrade(app: Flask) -> None:
    """After a model change, re-embed old materials from each web process's first request (not in tests)."""
    if app.extensions["coursebots.config"].testing:
        return
    on_first_request_of_each_process(app, lambda: reindex_in_background(app))


def next_queued() -> int | None:
    """The oldest queued material of any course."""
    return db.session.scalars(select(Material.id).where(Material.status == MaterialStatus.QUEUED)
                              .order_by(Material.id).limit(1)).first()


def run_pending(limit: int | None = None, kind: str = "inline") -> int:
    """Process queued materials in this thread until none is left (or ``limit``); returns how many ran."""
    done = 0
    me = worker_id(kind)
    while limit is None or done < limit:
        material_id = next_queued()
        if material_id is None:
            break
        if process_material(material_id, me) != "skipped":
            done += 1
    return done


def dispatch(material_ids: Iterable[int]) -> None:
    """Hand queued materials to workers: RQ when Redis is configured, else the in-process threads."""
    ids = list(material_ids)
    if not ids:
        return
    config = current_config()
    if config.redis_url:
        try:
            queue = rq_queue(config.redis_url)
            for material_id in ids:
                _enqueue(queue, material_id)
        except Exception as exc:  # Redis down: the files stay queued and recover_stale enqueues them later
            log.error("could not enqueue %d ingestion job(s): %s", len(ids), type(exc).__name__)
        return
    wake_local()


def wake_local() -> None:
    """Start or wake this process's ingestion threads (only without Redis and with threads configured).

    With no threads and no Redis, ``flask --app lti_tool materials work`` processes the queue.
    """
    config = current_config()
    if not config.redis_url and config.ingest_threads > 0:
        ensure_worker(current_app._get_current_object()).wake()  # type: ignore[attr-defined]


def rq_queue(redis_url: str) -> Any:
    """The RQ queue jobs go to (``rq`` and ``redis`` are imported only when Redis is configured)."""
    from redis import Redis  # only a deployment with Redis configured needs these clients
    from rq import Queue

    return Queue(QUEUE_NAME, connection=Redis.from_url(redis_url))


class InProcessWorker:
    """Background threads in a web process that drain the queue; woken on upload, polling otherwise.

    The threads hold the app only weakly: when an app is discarded (tests build many), its threads end.
    """

    POLL_SECONDS = 5.0

    def __init__(self, app: Flask, threads: int) -> None:
        """Start ``threads`` daemon threads for this app."""
        self._app = weakref.ref(app)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_recovery = 0.0
        self._threads = [threading.Thread(target=self._run, name=f"coursebots-ingest-{i}", daemon=True)
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """Look at the queue now."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current material (tests and shutdown)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            app = self._app()
            if app is None:
                return
            try:
                with app.app_context():
                    if first:
                        first = False
                        reindex_for_current_model()
                    stale_every = max(1.0, current_config().ingest_stale_seconds / 2)
                    if time.monotonic() - self._last_recovery > stale_every:
                        self._last_recovery = time.monotonic()
                        recover_stale()
                    run_pending(kind="thread")
                    db.session.remove()
            except Exception as exc:  # the thread must survive anything (a database restart, say)
                log.exception("ingest worker loop error: %s", type(exc).__name__)
            del app  # keep only the weak reference while idle
            self._wake.wait(self.POLL_SECONDS)
            self._wake.clear()


_START_LOCK = threading.Lock()


def ensure_worker(app: Flask) -> InProcessWorker:
    """This app's in-process worker, started on first need (not at import: CLI and tests stay thread-free)."""
    with _START_LOCK:
        worker = app.extensions.get("coursebots.ingest_worker")
        if worker is None:
            worker = InProcessWorker(app, max(1, app.extensions["coursebots.config"].ingest_threads))
            app.extensions["coursebots.ingest_worker"] = worker
        return worker  # type: ignore[no-any-return,unused-ignore]
