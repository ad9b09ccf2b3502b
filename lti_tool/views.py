"""Blueprint ``lti``: OIDC login, launch, JWKS (protocol only; the product's page comes from its launch handler)."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, make_response, render_template, request

from lti_tool import deep_linking, launch, ratelimit
from lti_tool.context import LaunchContext, Role
from lti_tool.metrics import LAUNCHES
from lti_tool.keys import jwks as tool_jwks
from lti_tool.reasons import LaunchRejected, rejection_response

bp = Blueprint("lti", __name__, url_prefix="/lti", template_folder="templates")
logger = logging.getLogger(__name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """OIDC third-party-initiated login (Moodle POSTs it; other platforms GET it)."""
    return ratelimit.check("login") or launch.start_login()


@bp.post("/relaunch")
def relaunch() -> Response:
    """Restart, in a new top-level window, a login whose launch lost its state cookie."""
    return ratelimit.check("login") or launch.relaunch(request.form.get("state", ""))


@bp.post("/launch")
def launch_view() -> Response:
    """The redirect URI: validate the launch, then deep-link or hand the launch to the product."""
    try:
        ctx = launch.validate_launch()
    except launch.CookiesBlocked as blocked:
        return launch.cookies_blocked_response(blocked)
    except LaunchRejected as exc:
        return rejection_response(exc)
    role = _primary_role(ctx)
    LAUNCHES.labels(message=ctx.message_type, role=role.value).inc()
    logger.info("launch accepted message=%s role=%s issuer=%s deployment=%s", ctx.message_type, role.value,
                ctx.issuer, ctx.deployment_id)
    if ctx.message_type == launch.DEEP_LINKING:
        if not ctx.is_teacher:
            return rejection_response(LaunchRejected("deep_linking_not_allowed", ctx.issuer, ctx.deployment_id))
        return deep_linking.respond(ctx)
    handler = current_app.extensions.get("coursebots.launch_handler")
    if handler is None:
        # Until the product registers its handler: a plain page saying what the launch resolved to.
        return make_response(render_template("lti/launched.html", role=role.value))
    response: Response = handler(ctx)
    return response


@bp.get("/jwks")
def jwks() -> Response:
    """The tool's public keys (current signing key and recently retired ones)."""
    response = jsonify(tool_jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _primary_role(ctx: LaunchContext) -> Role:
    for role in (Role.ADMINISTRATOR, Role.INSTRUCTOR, Role.TEACHING_ASSISTANT, Role.CONTENT_DEVELOPER):
        if role in ctx.roles:
            return role
    return Role.LEARNER
