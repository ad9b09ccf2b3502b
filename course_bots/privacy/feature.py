"""Privacy registers itself: the privacy API, the ``privacy`` CLI group and the retention scheduler."""
from __future__ import annotations

from flask import Flask

from course_bots.privacy import api
from course_bots.privacy.cli import privacy_cli
from course_bots.privacy.scheduler import init_purge_scheduler


def init_app(app: Flask) -> None:
    """Register this feature's blueprint, CLI commands and hooks on the app."""
    app.register_blueprint(api.bp)
    app.cli.add_command(privacy_cli)
    init_purge_scheduler(app)
