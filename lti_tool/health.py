"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

import functools
from typing import Any, Callable

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, abort, current_app, jsonify
from flask_migrate import Migrate
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from lti_tool import metrics as metric_defs
from lti_tool.extensions import db

bp = Blueprint("health", __name__)

LAUNCH_REJECTIONS = metric_defs.LAUNCH_REJECTIONS  # kept here for older imports; lti_tool.metrics owns them
LAUNCHES = metric_defs.LAUNCHES


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive (no dependencies checked)."""
    return jsonify({"status": "ok"})


@functools.lru_cache(maxsize=4)
def _script_heads(directory: str) -> tuple[str, ...]:
    """Head revisions of the migration scripts (read once per process: the files do not change while it runs)."""
    migrate_ext: Migrate = current_app.extensions["migrate"]
    return tuple(sorted(ScriptDirectory.from_config(migrate_ext.migrate.get_config(directory)).get_heads()))


def migration_state() -> tuple[str | None, tuple[str, ...]]:
    """(current database revision, head revisions of the migration scripts)."""
    heads = _script_heads(current_app.extensions["migrate"].directory)
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return (",".join(sorted(current)) or None), heads


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the database answers and its schema is at the migrations' head; model state is informative."""
    body: dict[str, Any] = {}
    ready = True
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        body["database"] = "ok"
        current, heads = migration_state()
        body["migrations"] = {"current": current, "head": ",".join(heads)}
        if current != ",".join(heads):
            ready = False
            body["migrations"]["problem"] = "run: flask --app lti_tool db upgrade"
    except Exception as exc:  # any database error means not ready; the type is enough to diagnose
        ready = False
        body["database"] = f"unavailable ({type(exc).__name__})"
    model_state: Callable[[], dict[str, Any]] | None = current_app.extensions.get("coursebots.model_state")
    if model_state is not None:
        try:
            body["model"] = model_state()
        except Exception as exc:  # never fails readiness
            body["model"] = {"state": "unknown", "problem": type(exc).__name__}
    body["status"] = "ready" if ready else "not_ready"
    return jsonify(body), (200 if ready else 503)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics (summed over gunicorn's workers): for the metrics token or the allowed networks only."""
    config = current_app.extensions["coursebots.config"]
    status = metric_defs.scrape_allowed(config.metrics_token, config.metrics_allow)
    if status != 200:
        abort(status)
    return Response(metric_defs.exposition(), mimetype=CONTENT_TYPE_LATEST)
