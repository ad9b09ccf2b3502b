"""Evaluation registers itself: the test-questions API and each web process's background check for due runs."""
from __future__ import annotations

from flask import Flask

from course_bots.evaluation import api
from course_bots.evaluation.jobs import init_background_check


def init_app(app: Flask) -> None:
    """Register this feature's blueprint and hooks on the app."""
    app.register_blueprint(api.bp)
    init_background_check(app)
