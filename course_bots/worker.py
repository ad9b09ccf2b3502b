"""RQ job entry points and the supervised RQ worker that survives Redis going away.

Run workers with ``flask --app lti_tool materials rq-worker`` (the same ``COURSEBOTS_*`` environment as the web
app). :func:`supervise` runs RQ's worker loop and, when Redis goes away (RQ's loop then quits), waits with
exponential backoff and starts a fresh worker once Redis answers again; on every (re)start it enqueues the files
that are queued in the database but have no job in Redis (a Redis restarted empty, an enqueue the web process
could not make), and a recovery thread re-queues stale materials even while no job arrives. Plain
``rq worker coursebots --url $COURSEBOTS_REDIS_URL`` still works (this module is the jobs' import path) but exits
when Redis is gone: run it under a supervisor (systemd ``Restart=always``).

The worker process builds the Flask app once (``create_app()`` from the environment, or the CLI's app) and runs
every job inside its app context.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from flask import Flask

from course_bots.materials.jobs import (QUEUE_NAME, enqueue_missing, recover_stale, reindex_for_current_model,
                                        worker_id)
from course_bots.materials.pipeline import process_material
from lti_tool import create_app
from lti_tool.extensions import current_config, db

log = logging.getLogger(__name__)

_app: Flask | None = None
_lock = threading.Lock()
_last_recovery = 0.0


def get_app() -> Flask:
    """The app of this worker process, created on the first job."""
    global _app
    with _lock:
        if _app is None:
            _app = create_app()
        return _app


def _maybe_recover() -> None:
    global _last_recovery

    every = max(1.0, current_config().ingest_stale_seconds / 2)
    if _last_recovery == 0.0:
        reindex_for_current_model()  # the first job of a worker started after a model change re-queues
    if time.monotonic() - _last_recovery > every or _last_recovery == 0.0:
        _last_recovery = time.monotonic()
        recover_stale()


def ingest_job(material_id: int) -> str:
    """Ingest one material (an RQ job); returns its final status."""
    app = get_app()
    with app.app_context():
        try:
            _maybe_recover()
            return process_material(material_id, worker_id("rq"))
        finally:
            db.session.remove()


def _recovery_loop(app: Flask, stop: threading.Event) -> None:
    """Re-queue stale materials every half stale period, also while no job arrives; survives any outage."""
    while True:
        with app.app_context():
            every = max(1.0, current_config().ingest_stale_seconds / 2)
            try:
                recover_stale()
            except Exception as exc:  # Redis or the database is away: the next round tries again
                log.warning("stale-job recovery failed: %s", type(exc).__name__)
                db.session.rollback()
            finally:
                db.session.remove()
        if stop.wait(every):
            return


def _redis_answers(connection: Any) -> bool:
    """Whether Redis answers a PING now."""
    try:
        return bool(connection.ping())
    except Exception:
        return False


def supervise(redis_url: str, *, app: Flask | None = None, burst: bool = False, worker_class: Any = None,
              backoff_s: float = 1.0, max_backoff_s: float = 30.0, recovery: bool = True,
              sleep: Callable[[float], None] = time.sleep) -> int:
    """Run RQ workers on the ingestion queue, starting a fresh one whenever Redis went away; returns the restarts.

    Returns when a worker stops on request (SIGTERM/SIGINT) or, with ``burst``, when the queue is empty while
    Redis answers. ``worker_class`` defaults to RQ's forking ``Worker`` (tests pass ``SimpleWorker``).
    """
    global _app
    from redis import Redis
    from rq import Queue, Worker

    if app is not None:
        _app = app
    app = get_app()
    stop = threading.Event()
    if recovery:
        threading.Thread(target=_recovery_loop, args=(app, stop), name="coursebots-recovery", daemon=True).start()
    restarts, wait = 0, backoff_s
    try:
        while True:
            connection = Redis.from_url(redis_url, socket_connect_timeout=5, health_check_interval=30)
            worker = None
            started = time.monotonic()
            try:
                queue = Queue(QUEUE_NAME, connection=connection)
                with app.app_context():
                    try:
                        requeued = enqueue_missing(queue)
                    finally:
                        db.session.remove()
                if requeued:
                    log.warning("enqueued %d queued file(s) that had no job in Redis", len(requeued))
                worker = (worker_class or Worker)([queue], connection=connection)
                worker.work(burst=burst, with_scheduler=False)
            except Exception as exc:  # Redis (or the database) is away while starting: wait and try again
                log.warning("ingestion worker cannot start: %s", type(exc).__name__)
            if worker is not None and getattr(worker, "_stop_requested", False):
                return restarts
            if worker is not None and _redis_answers(connection):
                if burst:
                    return restarts
                wait = backoff_s  # it ran and Redis is fine: a plain restart
            elif time.monotonic() - started > 60:
                wait = backoff_s
            log.warning("Redis went away or the RQ worker stopped; starting a new worker in %.1f s", wait)
            sleep(wait)
            wait = min(max_backoff_s, wait * 2)
            restarts += 1
            connection.close()
    finally:
        stop.set()
