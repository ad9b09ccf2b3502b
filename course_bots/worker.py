"""RQ job entry points: ``rq worker coursebots --url $COURSEBOTS_REDIS_URL`` imports this module.

The worker process builds the Flask app once (``create_app()`` from the same ``COURSEBOTS_*`` environment as
the web app) and runs every job inside its app context. It recovers stale jobs when it starts its first job and
then at most every half stale period, so a crashed worker's materials are retried or failed.
"""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from course_bots.materials.jobs import recover_stale, reindex_for_current_model, worker_id
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
