"""Settings registers itself: the bot-settings API (prompt, persona, mode, model, copy codes)."""
from __future__ import annotations

from flask import Flask

from course_bots.settings import api
from course_bots.settings.operations import external_model_name, model_kind


def init_app(app: Flask) -> None:
    """Register this feature's blueprint, CLI commands and hooks on the app."""
    app.register_blueprint(api.bp)
    app.extensions["coursebots.external_model_resolver"] = external_model_name  # consent asks
    app.extensions["coursebots.model_kind_resolver"] = model_kind  # the notice says who answers
