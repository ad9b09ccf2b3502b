"""The supervised RQ worker (``flask --app lti_tool materials rq-worker``): survives Redis going away.

:func:`supervise` runs RQ's worker loop and, when Redis goes away (RQ's loop then quits, or cannot start), waits
with exponential backoff and starts a fresh worker once Redis answers again. On every (re)start it enqueues the
files that are queued in the database but have no job in Redis (a Redis restarted empty, an enqueue the web
process could not make), and a recovery thread does the same every few seconds (RQ's loop often rides out a
short outage itself) and re-queues stale materials even while no job arrives. Jobs run
``course_bots.worker.ingest_job``: in this app with RQ's ``SimpleWorker``; RQ's forked work horse builds its own
(a forked copy of this one's database pool must not be used).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from flask import Flask

from course_bots.materials.jobs import QUEUE_NAME, enqueue_missing, recover_stale
from lti_tool.extensions import current_config, db

log = logging.getLogger(__name__)

_supervised: tuple[Flask, int] | None = None  # the app and the process that runs supervise()


def supervised_app() -> Flask | None:
    """The app :func:`supervise` runs in-process jobs in (None outside it and in a forked work horse)."""
    current = _supervised
    return current[0] if current is not None and current[1] == os.getpid() else None


MISSING_EVERY_S = 5.0  # how often queued files without a job in Redis are looked for


def _recovery_loop(app: Flask, redis_url: str, stop: threading.Event) -> None:
    """Enqueue queued files Redis lost (every few seconds) and re-queue stale ones (every half stale period).

    RQ's own loop often rides out a Redis restart without returning, so this, not the restart of the worker,
    is what hands an upload made during the outage to the worker once Redis is back. Survives any outage.
    """
    from redis import Redis
    from rq import Queue

    queue = Queue(QUEUE_NAME, connection=Redis.from_url(redis_url, socket_connect_timeout=5))
    last_stale = 0.0
    while True:
        with app.app_context():
            every = max(1.0, current_config().ingest_stale_seconds / 2)
            try:
                if time.monotonic() - last_stale >= every:
                    last_stale = time.monotonic()
                    recover_stale()
                requeued = enqueue_missing(queue)
                if requeued:
                    log.warning("enqueued %d queued file(s) that had no job in Redis", len(requeued))
            except Exception as exc:  # Redis or the database is away: the next round tries again
                log.warning("ingestion recovery failed: %s", type(exc).__name__)
                db.session.rollback()
            finally:
                db.session.remove()
        if stop.wait(min(every, MISSING_EVERY_S)):
            return


def _stop_listening(worker: Any) -> None:
    """End a worker's command-channel thread (RQ's teardown skips it when Redis is already gone)."""
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None and thread.is_alive():
        thread.stop()
        thread.join(timeout=2)
        try:
            worker.pubsub.close()
        except Exception:  # noqa: S110 - a connection already gone
            pass


def _redis_answers(connection: Any) -> bool:
    """Whether Redis answers a PING now."""
    try:
        return bool(connection.ping())
    except Exception:
        return False


def supervise(redis_url: str, app: Flask, *, burst: bool = False, worker_class: Any = None,
              backoff_s: float = 1.0, max_backoff_s: float = 30.0, recovery: bool = True,
              sleep: Callable[[float], None] = time.sleep) -> int:
    """Run RQ workers on the ingestion queue, starting a fresh one whenever Redis went away; returns the restarts.

    Returns when a worker stops on request (SIGTERM/SIGINT) or, with ``burst``, when the queue is empty while
    Redis answers. ``worker_class`` defaults to RQ's forking ``Worker`` (tests pass ``SimpleWorker``).
    """
    global _supervised
    from redis import Redis
    from rq import Queue, Worker

    _supervised = (app, os.getpid())
    stop = threading.Event()
    if recovery:
        threading.Thread(target=_recovery_loop, args=(app, redis_url, stop), name="coursebots-recovery",
                         daemon=True).start()
    restarts, wait = 0, backoff_s
    try:
        while True:
            connection = Redis.from_url(redis_url, socket_connect_timeout=5, health_check_interval=30)
            worker, clean = None, False
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
                clean = _redis_answers(connection)  # RQ's loop also just returns when Redis failed it
            except Exception as exc:  # Redis (or the database) is away: wait and try again
                log.warning("ingestion worker stopped: %s", type(exc).__name__)
            finally:
                _stop_listening(worker)
            if worker is not None and (getattr(worker, "_stop_requested", False)
                                       or getattr(worker, "_shutdown_requested_date", None) is not None):
                return restarts  # SIGTERM/SIGINT (RQ raises StopRequested when idle, without _stop_requested)
            if clean and burst:
                return restarts
            if clean or time.monotonic() - started > 60:
                wait = backoff_s  # it ran a while or Redis is fine: start again soon
            log.warning("Redis went away or the RQ worker stopped; starting a new worker in %.1f s", wait)
            sleep(wait)
            wait = min(max_backoff_s, wait * 2)
            restarts += 1
            connection.close()
    finally:
        stop.set()
        _supervised = None
