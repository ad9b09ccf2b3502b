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
    from course_bots import i18n, models_bot_settings  # noqa: F401  (settings tables join the metadata)
    from course_bots.views import api_bot_settings, api_chat

    app.register_blueprint(api_chat.bp)
    app.register_blueprint(api_bot_settings.bp)
    app.jinja_env.globals["catalogue"] = i18n.catalogue
    from course_bots.services.backends import external_model_name, model_state

    app.extensions["coursebots.external_model_resolver"] = external_model_name
    app.extensions["coursebots.model_state"] = model_state
    from course_bots.cli_eval import retrieval_cli
    from course_bots.cli_materials import materials_cli
    from course_bots.views import api_materials

    app.register_blueprint(api_materials.bp)
    app.cli.add_command(materials_cli)
    app.cli.add_command(retrieval_cli)
    from course_bots.services.materials import delete_bot_files
    from course_bots.services.privacy_ops import register_bot_delete_hook

    register_bot_delete_hook(app, delete_bot_files)
    from course_bots.cli_privacy import privacy_cli
    from course_bots.views import api_privacy

    app.register_blueprint(api_privacy.bp)
    app.cli.add_command(privacy_cli)
    from course_bots.views import api_admin

    app.register_blueprint(api_admin.bp)
    from course_bots.cli_llm import llm_cli

    app.cli.add_command(llm_cli)
    from course_bots.privacy_scheduler import init_purge_scheduler

    init_purge_scheduler(app)
