"""Administrator API under ``/api/v1/admin``: the launching platform's registrations, model catalogue and settings.

Read-only and scoped to the token's ``issuer``: an administrator of one platform never sees another platform's
registrations. Retention and usage live in :mod:`course_bots.privacy.api` (``/admin/retention``,
``/admin/usage``). Nothing here returns secrets: no URLs or keys of models, no platform key sets.
"""
from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import func, select

from course_bots.models import CourseBot
from course_bots import backends
from lti_tool.config import Config
from lti_tool.context import current_session, require_session
from lti_tool.extensions import current_config, db

logger = logging.getLogger(__name__)

bp = Blueprint("api_admin", __name__, url_prefix="/api/v1/admin")

# Settings an administrator may want to know; all come from the operator's COURSEBOTS_* configuration.
THRESHOLD_SETTINGS = ("privacy_min_students", "answer_score_threshold", "max_upload_mb", "max_course_mb",
                      "retention_anonymize_days", "retention_delete_days", "bot_inactive_delete_days",
                      "retention_purge_hours")


def platform_rows(issuer: str) -> list[dict[str, Any]]:
    """The issuer's registrations with their deployments and each deployment's number of course bots."""
    bots = dict(db.session.execute(select(CourseBot.deployment_id, func.count(CourseBot.id))
                                   .where(CourseBot.issuer == issuer).group_by(CourseBot.deployment_id)).all())
    registrations = current_app.extensions["coursebots.registrations"](issuer)
    return [{"id": r["id"], "name": r["name"], "issuer": issuer, "client_id": r["client_id"],
             "registered_via": r["registered_via"], "created_at": r["created_at"],
             "deployments": [{**d, "bots": int(bots.get(d["deployment_id"], 0))} for d in r["deployments"]]}
            for r in registrations]


def settings_rows(config: Config) -> list[dict[str, Any]]:
    """The thresholds in force, each with the ``COURSEBOTS_*`` key the operator sets it with."""
    env = {f.name: f.metadata.get("env", "") for f in fields(Config)}
    return [{"key": name, "env": env[name], "value": getattr(config, name)} for name in THRESHOLD_SETTINGS]


@bp.get("/platforms")
@require_session(teacher=True, administrator=True)
def platforms() -> Response:
    """The launching platform's registrations (client ids, manual/dynamic, deployments with bot counts)."""
    issuer = current_session().issuer
    rows = platform_rows(issuer)
    deployments = [d for p in rows for d in p["deployments"]]
    return jsonify({"issuer": issuer, "platforms": rows,
                    "totals": {"registrations": len(rows), "deployments": len(deployments),
                               "bots": sum(d["bots"] for d in deployments)}})


@bp.get("/models")
@require_session(teacher=True, administrator=True)
def models() -> Response:
    """The models teachers of this platform may pick: the default and the allowed catalogue entries."""
    issuer = current_session().issuer
    return jsonify({"issuer": issuer, "models": backends.catalogue_rows(current_config(), issuer),
                    "set_by": "operator", "configured_with": "COURSEBOTS_MODEL_CATALOGUE"})


@bp.get("/settings")
@require_session(teacher=True, administrator=True)
def settings() -> Response:
    """The thresholds in force (read-only: the operator sets them with ``COURSEBOTS_*`` keys)."""
    return jsonify({"settings": settings_rows(current_config()), "set_by": "operator",
                    "note": "Set by the operator with the COURSEBOTS_* configuration keys; read-only here."})
