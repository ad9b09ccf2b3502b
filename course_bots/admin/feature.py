"""Administration registers itself: the admin API behind the administrator's tab."""
from __future__ import annotations

from flask import Flask

from course_bots.admin import api


def init_app(app: Flask) -> None:
    """Register this feature's blueprint, CLI commands and hooks on the app."""
    app.register_blueprint(api.bp)
