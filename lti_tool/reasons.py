"""The one vocabulary of launch rejection reasons, and the one way a rejection is answered: page, log, counter.

docs/LTI.md lists the same codes; a test checks that every code here is documented there.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Response, make_response, render_template
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.metrics import LAUNCH_REJECTIONS
from lti_tool.models import Platform
from lti_tool.security import allow_framing_by

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    """A rejection reason: a stable code, the HTTP status of its error page and what a user is told."""

    code: str
    status: int
    message: str


_RELAUNCH = " Open the activity again from the course."
_ADMIN = " Your LMS administrator needs to fix the tool registration."

REASONS: dict[str, Reason] = {r.code: r for r in (
    # OIDC login (step 1)
    Reason("login_invalid", 400, "The login request lacks a required parameter, has an overlong one or targets "
                                 "another tool." + _RELAUNCH),
    Reason("rate_limited", 429, "Too many requests from your network address. Wait a minute, then open the "
                                "activity again."),
    Reason("unknown_platform", 403, "This LMS (issuer and client id) is not registered with CourseBots." + _ADMIN),
    # id_token format and algorithm
    Reason("id_token_missing", 400, "The launch did not include an id_token." + _RELAUNCH),
    Reason("token_malformed", 400, "The launch token is not a well-formed JWT." + _RELAUNCH),
    Reason("alg_none", 401, "The launch token is unsigned (alg none) and was refused."),
    Reason("alg_symmetric", 401, "The launch token is signed with a shared-secret algorithm (HS*) and was refused."),
    Reason("alg_unsupported", 401, "The launch token uses a signing algorithm other than RS256."),
    # state and nonce (binding the launch to this browser's login)
    Reason("state_missing", 400, "The launch has no state parameter." + _RELAUNCH),
    Reason("state_unknown", 400, "The launch's state was never issued here or has expired." + _RELAUNCH),
    Reason("state_mismatch", 400, "The launch's state does not belong to this browser's login." + _RELAUNCH),
    Reason("nonce_mismatch", 400, "The launch token's nonce is not the one issued at login." + _RELAUNCH),
    Reason("nonce_replayed", 400, "This launch was already used once and cannot be replayed." + _RELAUNCH),
    # who sent it
    Reason("unknown_issuer", 403, "The launch token's issuer is not a registered LMS." + _ADMIN),
    Reason("wrong_issuer", 400, "The launch token's issuer is not the LMS the login started from."),
    Reason("wrong_audience", 400, "The launch token is not addressed to this tool's client id."),
    Reason("wrong_azp", 400, "The launch token's authorized party (azp) is not this tool's client id."),
    Reason("unknown_deployment", 403, "This deployment of the tool is not registered with CourseBots." + _ADMIN),
    # signature and keys
    Reason("kid_missing", 401, "The launch token does not name its signing key (kid)."),
    Reason("unknown_kid", 401, "The launch token is signed with a key the LMS does not publish."),
    Reason("jwks_unreachable", 502, "CourseBots could not fetch the LMS's public keys. Try again in a moment."),
    Reason("bad_signature", 401, "The launch token's signature is not valid."),
    # time
    Reason("token_expired", 401, "The launch token has expired." + _RELAUNCH),
    Reason("iat_in_future", 401, "The launch token was issued in the future (check the servers' clocks)."),
    # message content
    Reason("claims_missing", 400, "The launch token lacks claims LTI 1.3 requires."),
    Reason("wrong_version", 400, "The launch is not an LTI 1.3.0 message."),
    Reason("wrong_message_type", 400, "CourseBots does not handle this kind of LTI message."),
    Reason("deep_linking_not_allowed", 403, "Only teachers may add CourseBots to a course."),
    # Dynamic Registration (the admin sees these inside the platform's registration frame)
    Reason("registration_missing_parameters", 400,
           "This address must be opened by the platform's Dynamic Registration (it needs an "
           "openid_configuration URL)."),
    Reason("registration_issuer_not_allowed", 403,
           "CourseBots may not contact this platform for registration. Ask the CourseBots administrator to add "
           "its issuer to COURSEBOTS_REGISTRATION_ALLOWED_ISSUERS (needed for platforms on private addresses)."),
    Reason("registration_configuration_unreachable", 502,
           "CourseBots could not fetch the platform's OpenID configuration. Check that the platform is "
           "reachable from the CourseBots server."),
    Reason("registration_configuration_invalid", 502,
           "The platform's OpenID configuration is not a valid LTI platform configuration."),
    Reason("registration_endpoint_unreachable", 502,
           "CourseBots could not reach the platform's registration endpoint."),
    Reason("registration_rejected", 502,
           "The platform refused the registration (the registration token may have expired: start the "
           "registration again in the platform)."),
    Reason("registration_invalid_response", 502,
           "The platform's answer to the registration had no client id or deployment id."),
)}


class LaunchRejected(Exception):
    """A launch or login that failed validation; carries a code from :data:`REASONS`."""

    def __init__(self, code: str, issuer: str = "", deployment_id: str = "") -> None:
        if code not in REASONS:
            raise ValueError(f"undocumented rejection reason {code!r}")
        super().__init__(code)
        self.code = code
        self.reason = REASONS[code]
        # Only protocol identifiers (never user data) travel with a rejection, for logs.
        self.issuer = issuer
        self.deployment_id = deployment_id


def allow_framing_by_issuer(issuer: str) -> None:
    """Let the page be framed by the registered platform of ``issuer``, or by anyone when it is unknown."""
    known = bool(issuer) and db.session.scalars(select(Platform.id).where(Platform.issuer == issuer)).first()
    parts = urlsplit(issuer)
    # An unknown sender still deserves a readable page inside its frame.
    allow_framing_by(f"{parts.scheme}://{parts.netloc}" if known else "*")


def rejection_response(exc: LaunchRejected) -> Response:
    """The iframe-safe error page of a rejection: counted, logged without personal data, frameable by its sender."""
    LAUNCH_REJECTIONS.labels(reason=exc.code).inc()
    logger.warning("launch rejected reason=%s issuer=%s deployment=%s", exc.code, exc.issuer or "-",
                   exc.deployment_id or "-")
    db.session.rollback()
    allow_framing_by_issuer(exc.issuer)
    page = render_template("lti/error.html", code=exc.code, message=exc.reason.message)
    return make_response(page, exc.reason.status)
