"""Fair use registers itself: its routes and the app's counters (Redis when configured, else this process)."""
from __future__ import annotations

from flask import Flask

from course_bots.quotas import api
from course_bots.quotas.counters import Counters
from course_bots.quotas.operations import EXTENSION


def init_app(app: Flask) -> None:
    """Register this feature's blueprint and create the app's limit counters."""
    app.register_blueprint(api.bp)
    app.extensions[EXTENSION] = Counters(app.extensions["coursebots.config"].redis_url)
