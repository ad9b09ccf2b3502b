"""Fair-use routes: a participant's questions left, a teacher's overrides and limit hits, the admin's limits."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify

from course_bots import i18n
from course_bots.bots import own_bot
from course_bots.privacy import operations as privacy_ops
from course_bots.quotas import operations as quotas
from course_bots.schemas import QuotaOverride, QuotaRule, parse_body, query_int
from lti_tool.context import JSON_BODY_BYTES, current_session, max_body, require_session
from lti_tool.extensions import current_config, db, utcnow

bp = Blueprint("api_quotas", __name__, url_prefix="/api/v1")


@bp.get("/bots/<int:bot_id>/quota")
@require_session()
@own_bot
def my_quota(bot_id: int) -> Response:
    """The caller's questions left today: ``{"questions_left", "limit", "resets_at"}`` (null: no daily limit)."""
    return jsonify(quotas.status(current_session(), bot_id))


@bp.get("/bots/<int:bot_id>/quota/overrides")
@require_session(teacher=True)
@own_bot
def read_overrides(bot_id: int) -> Response:
    """Per role: the teacher's overrides, the platform's limits they may only tighten, and what holds."""
    return jsonify({"roles": quotas.bot_overrides(current_config(), current_session().issuer, bot_id)})


@bp.put("/bots/<int:bot_id>/quota/overrides")
@max_body(JSON_BODY_BYTES)
@require_session(teacher=True)
@own_bot
def write_overrides(bot_id: int) -> Response:
    """Tighten one role's limits in this bot (only the fields sent; null removes an override)."""
    body = parse_body(QuotaOverride)
    values = body.model_dump(exclude_unset=True, exclude={"role"})
    session = current_session()
    quotas.set_bot_override(current_config(), session.issuer, bot_id, body.role, values,
                            i18n.language_of(session.locale))
    privacy_ops.audit_session(session, "quota_overrides_changed", target_type="course_bot", target_id=bot_id,
                              details={"role": body.role, "fields": sorted(values)})
    db.session.commit()
    return jsonify({"roles": quotas.bot_overrides(current_config(), session.issuer, bot_id)})


@bp.get("/bots/<int:bot_id>/quota/hits")
@require_session(teacher=True)
@own_bot
def limit_hits(bot_id: int) -> Response:
    """How often limits were hit in this bot over the last ``days`` days (by reason, day and pseudonym)."""
    days = query_int("days", 30, 1, 366)
    return jsonify(quotas.hits_summary(bot_id, (utcnow() - timedelta(days=days - 1)).date()))


@bp.get("/admin/quotas")
@require_session(teacher=True, administrator=True)
def admin_quotas() -> Response:
    """The launching platform's limits per role and its daily budget, with the configured defaults."""
    return jsonify(quotas.platform_settings(current_session().issuer))


@bp.put("/admin/quotas")
@max_body(JSON_BODY_BYTES)
@require_session(teacher=True, administrator=True)
def admin_set_quotas() -> Response:
    """Set the platform's limits of one role, or its daily budget (role ``platform``); null returns to the default."""
    body = parse_body(QuotaRule)
    values = body.model_dump(exclude_unset=True, exclude={"role"})
    session = current_session()
    result = quotas.set_limits(session.issuer, body.role, values)
    privacy_ops.audit_session(session, "platform_quotas_changed",
                              details={"role": body.role, "fields": sorted(values)})
    db.session.commit()
    return jsonify(result)
