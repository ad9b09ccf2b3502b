"""``/api/v1/session``: what the page's token says, and renewal while the page stays open."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from lti_tool.context import TokenError, api_error, current_session, issue_token, renew, require_session
from lti_tool.extensions import current_config

bp = Blueprint("api_session", __name__, url_prefix="/api/v1")


@bp.get("/session")
@require_session()
def session_info() -> Response:
    """The current session's bot, role, locale and expiry (never names or pseudonym)."""
    claims = current_session()
    return jsonify({"bot_id": claims.bot_id, "role": claims.primary_role.value, "teacher": claims.is_teacher,
                    "locale": claims.locale, "expires_at": claims.expires_at, "preview": claims.preview})


@bp.post("/session/renew")
@require_session()
def session_renew() -> Response:
    """A fresh token with a new expiry, up to the maximum session age after the launch."""
    try:
        claims = renew(current_session())
    except TokenError as exc:
        return api_error(exc.code, exc.message, 401)
    return jsonify({"token": issue_token(current_config().secret_key, claims), "expires_at": claims.expires_at})
