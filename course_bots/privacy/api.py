"""Privacy API under ``/api/v1``: consent, a student's export and erasure, retention and the audit trail.

Every route authenticates with the page's bearer session token (``require_session``); no cookie authenticates
these requests, so cross-site request forgery cannot borrow a session. Teacher routes also require that the
token's bot is the bot in the URL.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from course_bots.bots import own_bot
from course_bots.privacy.models import ParticipantLabel
from course_bots.privacy_rules import label
from course_bots.privacy import consent, operations as privacy_ops
from course_bots.schemas import (
    ConsentAnswer, RetentionBody, parse_body, query_int)
from lti_tool.context import JSON_BODY_BYTES, api_error, current_session, max_body, require_session
from lti_tool.extensions import db

bp = Blueprint("api_privacy", __name__, url_prefix="/api/v1")


@bp.get("/consent")
@require_session()
def consent_get() -> Response:
    """Whether the participant must be asked, why, and the notice text to show."""
    return jsonify(consent.consent_status(current_session()))


@bp.post("/consent")
@max_body(JSON_BODY_BYTES)
@require_session()
def consent_post() -> Response:
    """Record acceptance or refusal of the notice version that was shown: ``{"accepted": bool, "version": int}``."""
    answer = parse_body(ConsentAnswer)
    consent.record_consent(current_session(), answer.accepted, answer.version)
    db.session.commit()
    return jsonify(consent.consent_status(current_session()))


@bp.get("/me/export")
@require_session()
def me_export() -> Response:
    """The caller's own history in this course as a JSON download."""
    session = current_session()
    data = privacy_ops.export_for_session(session)
    privacy_ops.audit_session(session, "self_export", details={"conversations": len(data["conversations"])})
    db.session.commit()
    response = Response(json.dumps(data, ensure_ascii=False, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="coursebots-my-history.json"'
    return response


@bp.delete("/me")
@require_session()
def me_erase() -> Response:
    """Erase everything stored under the caller's pseudonym in this course (conversations, consent, label)."""
    counts = privacy_ops.erase_for_session(current_session())
    db.session.commit()
    return jsonify(counts)


@bp.get("/bots/<int:bot_id>/audit")
@require_session(teacher=True)
@own_bot
def bot_audit(bot_id: int) -> Response:
    """The course's audit trail: who (role and label), what, when — no content."""
    numbers = dict(db.session.execute(select(ParticipantLabel.pseudonym, ParticipantLabel.number)
                                      .where(ParticipantLabel.bot_id == bot_id)).all())
    items = [{"id": e.id, "action": e.action, "actor_role": e.actor_role,
              "actor": label(e.actor_role, numbers.get(e.actor_pseudonym)) if e.actor_pseudonym else e.actor_role,
              "target_type": e.target_type, "target_id": e.target_id, "details": e.details,
              "created_at": e.created_at.isoformat()}
             for e in privacy_ops.audit_events(bot_id, limit=query_int("limit", 200, 1, 1000))]
    return jsonify({"items": items})


def _retention_dict(issuer: str, bot_id: int | None) -> dict[str, Any]:
    platform = privacy_ops.platform_retention(issuer)
    effective = privacy_ops.effective_retention(bot_id) if bot_id else platform
    return {"anonymize_days": effective.anonymize_days, "delete_days": effective.delete_days,
            "platform": {"anonymize_days": platform.anonymize_days, "delete_days": platform.delete_days}}


def _set_retention(issuer: str, bot_id: int | None) -> Response:
    body = parse_body(RetentionBody)
    anonymize, delete = body.anonymize_days, body.delete_days
    session = current_session()
    try:
        privacy_ops.set_retention(issuer, anonymize, delete, bot_id=bot_id, actor_role=session.primary_role.value,
                                  actor_pseudonym=session.pseudonym)
    except ValueError as exc:
        db.session.rollback()
        return api_error("invalid_retention", str(exc), 400)
    db.session.commit()
    return jsonify(_retention_dict(issuer, bot_id))


@bp.route("/bots/<int:bot_id>/retention", methods=["GET", "PUT"])
@max_body(JSON_BODY_BYTES)
@require_session(teacher=True)
@own_bot
def bot_retention(bot_id: int) -> Response:
    """The course's retention; teachers may make it stricter than the platform's (PUT), never looser."""
    if request.method == "PUT":
        return _set_retention(current_session().issuer, bot_id)
    return jsonify(_retention_dict(current_session().issuer, bot_id))


@bp.route("/admin/retention", methods=["GET", "PUT"])
@max_body(JSON_BODY_BYTES)
@require_session(teacher=True, administrator=True)
def admin_retention() -> Response:
    """The launching platform's retention rule (administrators only; other platforms are out of reach)."""
    if request.method == "PUT":
        return _set_retention(current_session().issuer, None)
    return jsonify(_retention_dict(current_session().issuer, None))
