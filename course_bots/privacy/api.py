"""Privacy API under ``/api/v1``: consent, a student's export and deletion, and teachers' logs, exports and audit.

Every route authenticates with the page's bearer session token (``require_session``); no cookie authenticates
these requests, so cross-site request forgery cannot borrow a session. Teacher routes also require that the
token's bot is the bot in the URL.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from course_bots.models import ParticipantLabel
from course_bots.privacy import label
from course_bots.services import consent, privacy_ops, teacher_logs, usage
from course_bots.services import conversations as conv
from course_bots.views.schemas import INT_MAX, ConsentAnswer, InvalidRequest, RetentionBody, parse_body, query_choice, \
    query_int
from lti_tool.context import JSON_BODY_BYTES, Role, api_error, current_session, max_body, require_session
from lti_tool.extensions import db

bp = Blueprint("api_privacy", __name__, url_prefix="/api/v1")


def _own_bot(bot_id: int) -> Response | None:
    if current_session().bot_id != bot_id:
        return api_error("forbidden", "This token belongs to another course.", 403)
    return None


LOG_FILTERS = ("failed", "unanswered", "low_confidence", "up", "down")


def _parse_time(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidRequest("invalid_request", f"{name} is an ISO 8601 date and time.") from None


def _committing(work: Callable[[], Any]) -> Any:
    """Run a service call and commit once; service errors become the API's error shape."""
    try:
        result = work()
    except conv.ConversationError as exc:
        db.session.rollback()
        return api_error(exc.code, exc.message, exc.status)
    except consent.ConsentError as exc:
        db.session.rollback()
        return api_error(exc.code, exc.message, exc.status)
    db.session.commit()
    return result


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
    result = _committing(lambda: consent.record_consent(current_session(), answer.accepted, answer.version))
    if isinstance(result, Response):
        return result
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


@bp.delete("/me/conversations")
@require_session()
def me_delete_conversations() -> Response:
    """Delete all of the caller's conversations in this course."""
    deleted = _committing(lambda: conv.delete_all_conversations(current_session()))
    return jsonify({"deleted": deleted})


@bp.delete("/me")
@require_session()
def me_erase() -> Response:
    """Erase everything stored under the caller's pseudonym in this course (conversations, consent, label)."""
    counts = _committing(lambda: privacy_ops.erase_for_session(current_session()))
    return jsonify(counts)


@bp.delete("/conversations/<int:conversation_id>")
@require_session()
def conversation_delete(conversation_id: int) -> Response:
    """Delete one of the caller's own conversations (someone else's reads as not found)."""
    result = _committing(lambda: conv.delete_conversation(current_session(), conversation_id))
    if isinstance(result, Response):
        return result
    return jsonify({"deleted": 1})


@bp.get("/bots/<int:bot_id>/logs")
@require_session(teacher=True)
def bot_logs(bot_id: int) -> Response:
    """Conversations by label and role, or only aggregate counts below the small-course threshold."""
    denied = _own_bot(bot_id)
    if denied:
        return denied
    try:
        data = teacher_logs.teacher_logs(
            bot_id, role=query_choice("role", tuple(r.value for r in Role)), since=_parse_time("since"),
            until=_parse_time("until"), only=query_choice("only", LOG_FILTERS),
            include_preview=request.args.get("include_preview") == "1",
            limit=query_int("limit", 50, 1, 500), offset=query_int("offset", 0, 0, INT_MAX),
            language=consent.language_of(current_session().locale))
    except ValueError:
        return api_error("invalid_request", "Invalid filter: dates are ISO 8601, limit/offset numbers.", 400)
    return jsonify(data)


@bp.get("/bots/<int:bot_id>/logs/export")
@require_session(teacher=True)
def bot_logs_export(bot_id: int) -> Response:
    """The logs as CSV or JSON (``?format=csv|json``); refused while the course is below the threshold; audited."""
    denied = _own_bot(bot_id)
    if denied:
        return denied
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "json"):
        return api_error("invalid_request", "format is csv or json.", 400)
    state = teacher_logs.logs_state(bot_id, consent.language_of(current_session().locale))
    if not state["open"]:
        return api_error("logs_closed", state["message"], 403)
    rows = teacher_logs.export_rows(bot_id, include_preview=request.args.get("include_preview") == "1")
    privacy_ops.audit_session(current_session(), "logs_export", target_type="course_bot", target_id=bot_id,
                              details={"format": fmt, "rows": len(rows)})
    db.session.commit()
    if fmt == "json":
        response = Response(json.dumps(rows, ensure_ascii=False, indent=2), mimetype="application/json")
    else:
        response = Response(teacher_logs.to_csv(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="coursebots-logs-{bot_id}.{fmt}"'
    return response


@bp.get("/bots/<int:bot_id>/audit")
@require_session(teacher=True)
def bot_audit(bot_id: int) -> Response:
    """The course's audit trail: who (role and label), what, when — no content."""
    denied = _own_bot(bot_id)
    if denied:
        return denied
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
def bot_retention(bot_id: int) -> Response:
    """The course's retention; teachers may make it stricter than the platform's (PUT), never looser."""
    denied = _own_bot(bot_id)
    if denied:
        return denied
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


@bp.get("/admin/usage")
@require_session(teacher=True, administrator=True)
def admin_usage() -> Response:
    """Usage per course of the launching platform: counts and tokens, never content (administrators only)."""
    since = request.args.get("since")
    try:
        since_day = datetime.fromisoformat(since).date() if since else None
    except (ValueError, OverflowError):
        return api_error("invalid_request", "since is an ISO 8601 date.", 400)
    courses = usage.usage_by_course(current_session().issuer, since=since_day)
    totals = {k: sum(c[k] for c in courses) for k in usage.COUNTERS}
    return jsonify({"issuer": current_session().issuer, "courses": courses,
                    "totals": {"bots": len(courses), **totals}})
