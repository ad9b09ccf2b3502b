"""The product's pages: templates, static files, the launch handler, the session API and the admin landing page."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any, Callable

from flask import Blueprint, Flask, current_app, render_template, request

from course_bots import errors, i18n, session_api
from course_bots.launch import handle_launch
from lti_tool.extensions import current_config

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


def version() -> str:
    """The installed package's version (``unknown`` when run from a tree that was never installed)."""
    try:
        return importlib.metadata.version("coursebots")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def readiness() -> dict[str, Any]:
    """What ``/readyz`` answers (database, schema, model), asked in-process: one check, two readers."""
    view: Callable[[], Any] | None = current_app.view_functions.get("health.readyz")
    if view is None:
        return {"status": "unknown"}
    try:
        answer = current_app.make_response(view())
        return dict(answer.get_json(silent=True) or {})
    except Exception as exc:  # the landing page never fails because a check did
        return {"status": "not_ready", "database": f"unavailable ({type(exc).__name__})"}


def manual_values() -> list[tuple[str, str, bool]]:
    """(Moodle field label, value, whether the value is a URL to copy) for a manual registration in Moodle."""
    config = current_config()
    return [("Tool name", config.tool_name, False), ("Tool URL", config.url("/lti/launch"), True),
            ("LTI version", "LTI 1.3", False), ("Public key type", "Keyset URL", False),
            ("Public keyset", config.url("/lti/jwks"), True), ("Initiate login URL", config.url("/lti/login"), True),
            ("Redirection URI(s)", config.url("/lti/launch"), True),
            ("Tool configuration usage", "Show in activity chooser and as a preconfigured tool", False),
            ("Supports Deep Linking (Content-Item Message)", "✓", False),
            ("Content Selection URL", config.url("/lti/launch"), True)]


@bp.get("/")
def landing() -> str:
    """The tool's root address: what CourseBots is, health, version and how to register it (no personal data)."""
    lang = request.accept_languages.best_match(i18n.LANGUAGES, default="en") or "en"
    config = current_config()
    ready = readiness()
    model = ready.get("model") if isinstance(ready.get("model"), dict) else {}
    return render_template("course_bots/landing.html", lang=lang, T=i18n.messages(lang), ready=ready,
                           model_state=str((model or {}).get("state") or "unknown"), version=version(),
                           tool_name=config.tool_name, registration_url=config.url("/lti/register"),
                           manual=manual_values(), readyz_url=config.url("/readyz"))
