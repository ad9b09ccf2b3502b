"""Plugs the product into the app shell: blueprints, the launch handler and CLI groups."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register course_bots' blueprints, CLI commands and hooks on the app."""
    from course_bots.views import api_session, pages
    from course_bots.views.launch import handle_launch

    app.extensions["coursebots.launch_handler"] = handle_launch
    app.register_blueprint(pages.bp)
    app.register_blueprint(api_session.bp)
