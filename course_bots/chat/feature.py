"""Chat registers itself: the chat API, the ``llm`` CLI group and what the shell asks of the model."""
from __future__ import annotations

from flask import Flask

from course_bots.chat import api, logs_api
from course_bots.backends import model_state
from course_bots.chat.cli import llm_cli, usage_command


def init_app(app: Flask) -> None:
    """Register this feature's blueprint, CLI commands and hooks on the app."""
    app.register_blueprint(api.bp)
    app.register_blueprint(logs_api.bp)
    app.cli.add_command(llm_cli)
    # `flask privacy usage`: the privacy group (registered before chat) lists usage, which chat records.
    app.cli.commands["privacy"].add_command(usage_command)  # type: ignore[attr-defined]
    app.extensions["coursebots.model_state"] = model_state
