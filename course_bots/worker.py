"""RQ job entry points: the jobs on the ``coursebots`` queue name ``course_bots.worker.ingest_job``.

Run workers with ``flask --app lti_tool materials rq-worker`` (:mod:`course_bots.materials.rq_worker`: starts a
new RQ worker whenever Redis went away and came back). Plain ``rq worker coursebots --url $COURSEBOTS_REDIS_URL``
also imports this module but exits when Redis is gone: run it under a supervisor (systemd ``Restart=always``).

A job runs in the app of the supervised worker (inherited by RQ's forked work horse), else in an app this process
builds once (``create_app()`` from the same ``COURSEBOTS_*`` environment as the web app).
"""
from __future__ import annotations

import logging
import threading
import time
from flask import Flask

from course_bots.materials import rq_worker
from course_bots.materials.jobs import recover_stale, reindex_for_current_model, worker_id
from course_bots.materials.pipeline import process_material
from lti_tool import create_app
from lti_tool.extensions import current_config, db

log = logging.getLogger(__name__)

_app: Flask | None = None
_lock = threading.Lock()
_last_recovery = 0.0


def get_app() -> Flask:
    """The app of this worker process: the supervised worker's, or one created on the first job."""
    global _app
    supervised = rq_worker.supervised_app()
    if supervised is not None:
        return supervised
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
