"""The product's pages: templates and static files, the launch handler and the page's session API."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask

from course_bots import errors, i18n, session_api
from course_bots.launch import handle_launch

PACKAGE = Path(__file__).resolve().parent

bp = Blueprint("pages", __name__, template_folder=str(PACKAGE / "templates"),
               static_folder=str(PACKAGE / "static"), static_url_path="/static/coursebots")


def init_app(app: Flask) -> None:
    """Register the pages, the session API, the launch handler, the catalogue and the service-error handler."""
    errors.init_app(app)
    app.extensions["coursebots.launch_handler"] = handle_launch
    app.register_blueprint(bp)
    app.register_blueprint(session_api.bp)
    app.jinja_env.globals["catalogue"] = i18n.messages  # German in the configured form of address
