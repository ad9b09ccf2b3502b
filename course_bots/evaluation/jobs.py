"""Where test questions run: never in a request. A daemon thread per run, started when the teacher's tab finds one
due, and each web process's background check, which looks at the courses with test questions every few seconds.

Runs only search (the course's cached index, as students' questions do) and write one row, so a run never holds a
student's question up; of two processes that find the same run due, the database lets only one claim it.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref

from flask import Flask

from course_bots.evaluation import operations as svc
from course_bots.evaluation.models import TestRun
from lti_tool.extensions import db, on_first_request_of_each_process

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_ACTIVE: set[tuple[int, int]] = set()  # (id of the app, bot id) with a run thread in this process


def run_due_now(bot_id: int) -> TestRun | None:
    """Claim, run and commit a due run of one course (call inside an app context); None when none was due."""
    try:
        run = svc.run_due(bot_id)
        db.session.commit()
        return run
    except Exception:
        db.session.rollback()
        log.exception("test questions of bot %s could not be run", bot_id)
        return None


def start_if_due(app: Flask, bot_id: int) -> threading.Thread | None:
    """Start a background run of the course when one is due and none is running here; returns its thread."""
    if not svc.is_due(bot_id):
        return None
    key = (id(app), bot_id)
    with _LOCK:
        if key in _ACTIVE:
            return None
        _ACTIVE.add(key)

    def run() -> None:
        try:
            with app.app_context():
                try:
                    run_due_now(bot_id)
                finally:
                    db.session.remove()
        finally:
            with _LOCK:
                _ACTIVE.discard(key)

    thread = threading.Thread(target=run, name=f"coursebots-test-questions-{bot_id}", daemon=True)
    thread.start()
    return thread


def check_all() -> int:
    """Run every course's due test questions in this thread (call inside an app context); returns how many ran."""
    ran = 0
    for bot_id in svc.bots_with_questions():
        if run_due_now(bot_id) is not None:
            ran += 1
    return ran


def _loop(app_ref: "weakref.ReferenceType[Flask]", every: float) -> None:
    while True:
        time.sleep(every)
        app = app_ref()
        if app is None:
            return
        try:
            with app.app_context():
                try:
                    check_all()
                finally:
                    db.session.remove()
        except Exception as exc:  # the database may be down or not migrated yet: the next tick tries again
            log.warning("test questions check failed: %s", type(exc).__name__)
        del app


def init_background_check(app: Flask) -> None:
    """From each web process's first request, check for due runs every half settle delay (not in tests)."""
    config = app.extensions["coursebots.config"]
    if config.testing:
        return
    every = max(5.0, config.test_questions_settle_seconds / 2)
    on_first_request_of_each_process(app, lambda: threading.Thread(
        target=_loop, args=(weakref.ref(app), every), daemon=True, name="coursebots-test-questions").start())
