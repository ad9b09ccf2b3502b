"""Chat logs and history under ``/api/v1``: a student deletes their conversations; teachers read pseudonymous
logs and export them; administrators see usage per course (counts and tokens, never content).

Every route authenticates with the page's bearer session token; teacher routes also require that the token's bot
is the bot in the URL.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request

from course_bots.bots import own_bot
from course_bots.chat import conversations as conv
from course_bots.chat import teacher_logs, usage
from course_bots.privacy import operations as privacy_ops
from course_bots.schemas import INT_MAX, InvalidRequest, query_choice, query_int
from lti_tool.context import Role, api_error, current_session, require_session
from lti_tool.extensions import db

bp = Blueprint("api_chat_logs", __name__, url_prefix="/api/v1")

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


@bp.delete("/me/conversations")
@require_session()
def me_delete_conversations() -> Response:
    """Delete all of the caller's conversations in this course."""
    deleted = conv.delete_all_conversations(current_session())
    db.session.commit()
    return jsonify({"deleted": deleted})


@bp.delete("/conversations/<int:conversation_id>")
@require_session()
def conversation_delete(conversation_id: int) -> Response:
    """Delete one of the caller's own conversations (someone else's reads as not found)."""
    conv.delete_conversation(current_session(), conversation_id)
    db.session.commit()
    return jsonify({"deleted": 1})


@bp.get("/bots/<int:bot_id>/logs")
@require_session(teacher=True)
@own_bot
def bot_logs(bot_id: int) -> Response:
    """Conversations by label and role, or only aggregate counts below the small-course threshold."""
    try:
        data = teacher_logs.teacher_logs(
            bot_id, role=query_choice("role", tuple(r.value for r in Role)), since=_parse_time("since"),
            until=_parse_time("until"), only=query_choice("only", LOG_FILTERS),
            include_preview=request.args.get("include_preview") == "1",
            limit=query_int("limit", 50, 1, 500), offset=query_int("offset", 0, 0, INT_MAX),
            language=privacy_ops.language_of(current_session().locale))
    except ValueError:
        return api_error("invalid_request", "Invalid filter: dates are ISO 8601, limit/offset numbers.", 400)
    return jsonify(data)


@bp.get("/bots/<int:bot_id>/usage/daily")
@require_session(teacher=True)
@own_bot
def bot_usage_daily(bot_id: int) -> Response:
    """This course's questions, answers, errors and tokens per day over the last ``days`` days, and per model."""
    days = query_int("days", 30, 1, usage.MAX_DAYS)  # else 400 invalid_request
    return jsonify(usage.usage_daily(days, bot_id=bot_id))


@bp.get("/bots/<int:bot_id>/logs/export")
@require_session(teacher=True)
@own_bot
def bot_logs_export(bot_id: int) -> Response:
    """The logs as CSV or JSON (``?format=csv|json``); refused while the course is below the threshold; audited."""
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "json"):
        return api_error("invalid_request", "format is csv or json.", 400)
    state = teacher_logs.logs_state(bot_id, privacy_ops.language_of(current_session().locale))
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


@bp.get("/admin/usage/daily")
@require_session(teacher=True, administrator=True)
def admin_usage_daily() -> Response:
    """Usage of the launching platform per day over the last ``days`` days, per course and per model."""
    days = query_int("days", 30, 1, usage.MAX_DAYS)  # else 400 invalid_request
    return jsonify(usage.usage_daily(days, issuer=current_session().issuer))


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
