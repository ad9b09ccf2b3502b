"""Runs the retention purge automatically in each web process (``COURSEBOTS_RETENTION_PURGE_HOURS``).

Started lazily on the first request of a process, so forked workers each get their own thread; on PostgreSQL an
advisory lock lets only one process purge at a time. ``flask --app lti_tool privacy purge`` does the same from cron.
"""
from __future__ import annotations

import logging
import random
import threading
import time

from flask import Flask
from sqlalchemy import text

from course_bots.privacy.operations import purge
from lti_tool.extensions import db, on_first_request_of_each_process

logger = logging.getLogger(__name__)
_ADVISORY_LOCK_ID = 0x43425056  # "CBPV": one purge at a time across processes


def init_purge_scheduler(app: Flask) -> None:
    """Arrange for the purge to run every configured number of hours (not in tests, not when set to 0)."""
    config = app.extensions["coursebots.config"]
    if config.testing or config.retention_purge_hours <= 0:
        return
    on_first_request_of_each_process(app, lambda: threading.Thread(
        target=_loop, args=(app, config.retention_purge_hours), daemon=True, name="coursebots-retention-purge").start())


def run_purge_once(app: Flask) -> dict[str, int] | None:
    """One purge with commit; None when another process holds the PostgreSQL lock."""
    with app.app_context():
        try:
            if db.engine.dialect.name == "postgresql":
                if not db.session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"),
                                          {"id": _ADVISORY_LOCK_ID}).scalar():
                    db.session.rollback()
                    return None
            counts = purge()
            db.session.commit()
            return counts
        except Exception:
            db.session.rollback()
            logger.exception("retention purge failed")
            return None
        finally:
            db.session.remove()


def _loop(app: Flask, hours: int) -> None:
    # Workers started together should not all purge in the same minute.
    time.sleep(random.uniform(30, 300))
    while True:
        run_purge_once(app)
        time.sleep(hours * 3600)
