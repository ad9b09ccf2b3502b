"""Materials registers itself: the materials API, the ``materials`` and ``retrieval`` CLI groups, file clean-up, the
re-embedding of materials after a change of the embedding model."""
from __future__ import annotations

from flask import Flask

from course_bots.materials import api, pages_api
from course_bots.materials.cli import materials_cli
from course_bots.materials.cli_eval import retrieval_cli
from course_bots.materials.jobs import init_model_upgrade
from course_bots.materials.operations import delete_bot_files
from course_bots.materials.warming import warm
from course_bots.privacy.operations import register_bot_delete_hook


def init_app(app: Flask) -> None:
    """Register this feature's blueprint, CLI commands and hooks on the app."""
    app.register_blueprint(api.bp)
    app.register_blueprint(pages_api.bp)  # what the bot read, page by page, and the teacher's page edits
    app.cli.add_command(materials_cli)
    app.cli.add_command(retrieval_cli)
    register_bot_delete_hook(app, delete_bot_files)  # retention deletes a bot's stored files too
    init_model_upgrade(app)  # after a model change, each web process's first request re-embeds in the background
    app.extensions["coursebots.warm"] = lambda courses: warm(app, courses)  # wsgi.py, COURSEBOTS_WARM_ON_START
