"""LTI Dynamic Registration (Moodle-compatible): ``GET /lti/register``.

The admin pastes ``/lti/register`` into the platform, which opens it in an iframe with ``openid_configuration``
and ``registration_token``. We fetch the platform's configuration server to server, POST our client
registration with the token as bearer, store the platform, client id and deployment, and close the frame with
``org.imsglobal.lti.close``. Every failure ends on the iframe-safe error page with a ``registration_*`` code.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, render_template, request
from pylti1p3.dynamic_registration import DynamicRegistration
from sqlalchemy import select

from lti_tool import ratelimit, safe_fetch, security
from lti_tool.config import Config
from lti_tool.extensions import current_config, db
from lti_tool.models import Deployment, Platform
from lti_tool.reasons import REASONS

logger = logging.getLogger(__name__)

registration_bp = Blueprint("lti_registration", __name__, url_prefix="/lti")

TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email", "locale")
SCOPES: tuple[str, ...] = ()  # the chatbot uses no platform services (AGS/NRPS) yet
SECRET_KEYS = frozenset({"client_secret", "registration_access_token"})


class RegistrationError(Exception):
    """A registration that cannot complete; ``code`` is one of :data:`REASONS`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class RegistrationResult:
    """What a completed registration stored."""

    platform_id: int
    issuer: str
    client_id: str
    deployment_id: str
    created: bool


class CourseBotsRegistration(DynamicRegistration):
    """The client registration CourseBots sends (pylti1p3's payload, filled from our configuration)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.client_name = config.tool_name
        self.description = f"{config.tool_name}: a course chatbot grounded in the teacher's materials."

    def get_initiate_login_uri(self) -> str:
        """The OIDC login initiation URL."""
        return self.config.url("/lti/login")

    def get_jwks_uri(self) -> str:
        """The tool's public key set."""
        return self.config.url("/lti/jwks")

    def get_redirect_uris(self) -> list[str]:
        """Redirect URIs; Moodle requires an exact match, so only the launch URL."""
        return [self.config.url("/lti/launch")]

    def get_scopes(self) -> list[str]:
        """Service scopes requested from the platform."""
        return list(SCOPES)

    def get_domain(self) -> str:
        """Host and port of the tool (must match the launch URL's host for Moodle)."""
        return self.config.base_host

    def get_target_link_uri(self) -> str:
        """Default launch target."""
        return self.config.url("/lti/launch")

    def get_claims(self) -> list[str]:
        """Identity claims wanted in launches (names only feed PII scrubbing and are never stored)."""
        return list(CLAIMS)

    def get_messages(self) -> list[dict[str, str]]:
        """Supported messages: resource links and deep linking (adding the course bot to a course)."""
        launch = self.config.url("/lti/launch")
        return [
            {"type": "LtiResourceLinkRequest", "target_link_uri": launch, "label": self.config.tool_name},
            {"type": "LtiDeepLinkingRequest", "target_link_uri": launch, "label": self.config.tool_name},
        ]

    def get_logo_uri(self) -> str:
        """No logo is published yet."""
        return ""

    def lti_registration_data(self) -> dict[str, Any]:
        """The registration JSON (empty optional fields left out)."""
        data: dict[str, Any] = super().lti_registration_data()
        if not data.get("logo_uri"):
            data.pop("logo_uri", None)
        if not data.get("scope"):
            data.pop("scope", None)
        return data


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def _same_site(url: str, issuer: str) -> bool:
    """Whether ``url`` is ``issuer`` or lies under it (scheme, host and port compared parsed, not as text)."""
    try:
        a, b = urlsplit(url), urlsplit(issuer.rstrip("/"))
        same = (a.scheme, a.hostname, a.port, a.username, a.password) == (b.scheme, b.hostname, b.port, None, None)
    except ValueError:
        return False
    return same and bool(a.hostname) and (a.path == b.path or a.path.startswith(b.path + "/"))


def _listed(config: Config, url: str) -> bool:
    """Whether ``url`` belongs to an issuer on ``COURSEBOTS_REGISTRATION_ALLOWED_ISSUERS``."""
    return any(_same_site(url, issuer) for issuer in config.registration_allowed_issuers)


def _refuse(reason: str) -> RegistrationError:
    """One answer for every refused target (allow-list, private address, unresolvable, bad URL): no port scanning.

    Only the server log says why, without the URL's path or query (they may carry tokens).
    """
    logger.warning("registration refused: %s", reason)
    return RegistrationError("registration_issuer_not_allowed")


def fetch_openid_configuration(config: Config, url: str,
                               resolver: safe_fetch.Resolver | None = None) -> dict[str, Any]:
    """Fetch and check a platform's OpenID configuration (raises :class:`RegistrationError`)."""
    listed = _listed(config, url)
    if config.registration_allowed_issuers and not listed:
        # Refuse before fetching anything: with an allow-list, never contact unlisted hosts.
        raise _refuse("configuration URL not under an allowed issuer")
    try:
        # Only an allow-listed platform may live on a private address (e.g. a campus Moodle on 10.x).
        response = safe_fetch.fetch("GET", url, allow_private=listed, headers={"Accept": "application/json"},
                                    resolver=resolver)
    except safe_fetch.FetchRefused as exc:
        raise _refuse(f"configuration URL: {exc.reason}") from exc
    except safe_fetch.FetchFailed as exc:
        logger.warning("registration: configuration fetch failed (%s)", exc.reason)
        raise RegistrationError("registration_configuration_unreachable") from exc
    if not response.ok:
        logger.warning("registration: configuration fetch answered HTTP %s", response.status)
        raise RegistrationError("registration_configuration_unreachable")
    try:
        openid = response.json()
    except ValueError as exc:
        raise RegistrationError("registration_configuration_invalid") from exc
    if not isinstance(openid, dict):
        raise RegistrationError("registration_configuration_invalid")
    issuer = str(openid.get("issuer") or "")
    needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")
    if not all(isinstance(openid.get(key), str) and openid.get(key) for key in needed) \
            or not isinstance(openid.get(PLATFORM_CONFIGURATION), dict):
        raise RegistrationError("registration_configuration_invalid")
    # LTI-DR 3.5.1: the configuration URL must live under the issuer (no platform speaking for another).
    if not (url == issuer or url.startswith(issuer.rstrip("/") + "/")):
        raise RegistrationError("registration_configuration_invalid")
    if config.registration_allowed_issuers and issuer.rstrip("/") not in config.registration_allowed_issuers:
        raise _refuse("issuer not allowed")
    return openid


def post_registration(endpoint: str, token: str, payload: dict[str, Any], allow_private: bool = False,
                      resolver: safe_fetch.Resolver | None = None) -> dict[str, Any]:
    """POST the client registration with the bearer token; return the platform's answer."""
    headers = {"Accept": "application/json"}
    if token:  # optional in LTI-DR; Moodle always sends one
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = safe_fetch.fetch("POST", endpoint, allow_private=allow_private, headers=headers,
                                    json_body=payload, resolver=resolver)
    except safe_fetch.FetchRefused as exc:
        raise _refuse(f"registration endpoint: {exc.reason}") from exc
    except safe_fetch.FetchFailed as exc:
        logger.warning("registration: endpoint unreachable (%s)", exc.reason)
        raise RegistrationError("registration_endpoint_unreachable") from exc
    if not response.ok:
        logger.warning("registration: platform refused with HTTP %s", response.status)
        raise RegistrationError("registration_rejected")
    try:
        answer = response.json()
    except ValueError as exc:
        raise RegistrationError("registration_invalid_response") from exc
    if not isinstance(answer, dict):
        raise RegistrationError("registration_invalid_response")
    return answer


def store_registration(openid: dict[str, Any], answer: dict[str, Any]) -> RegistrationResult:
    """Create or update the Platform (issuer + client id) and its Deployment; flushes, does not commit."""
    tool_conf = answer.get(TOOL_CONFIGURATION)
    client_id = answer.get("client_id")
    deployment_id = tool_conf.get("deployment_id") if isinstance(tool_conf, dict) else None
    if not isinstance(client_id, str) or not client_id or deployment_id in (None, ""):
        raise RegistrationError("registration_invalid_response")
    deployment_id = str(deployment_id)
    issuer = openid["issuer"].rstrip("/")
    platform = db.session.scalar(select(Platform).where(Platform.issuer == issuer, Platform.client_id == client_id))
    created = platform is None
    if platform is None:
        platform = Platform(issuer=issuer, client_id=client_id)
        db.session.add(platform)
    family = openid[PLATFORM_CONFIGURATION].get("product_family_code") or "LTI platform"
    platform.name = f"{family} at {urlsplit(issuer).netloc}"[:255]
    platform.auth_login_url = openid["authorization_endpoint"]
    platform.auth_token_url = openid["token_endpoint"]
    platform.key_set_url = openid["jwks_uri"]
    platform.key_set = None  # keys may have changed with a re-registration: fetch them again
    platform.key_set_fetched_at = None
    platform.registered_via = "dynamic"
    platform.registration_data = {key: value for key, value in answer.items() if key not in SECRET_KEYS}
    db.session.flush()
    if not any(d.deployment_id == deployment_id for d in platform.deployments):
        platform.deployments.append(Deployment(deployment_id=deployment_id))
        db.session.flush()
    return RegistrationResult(platform.id, issuer, client_id, deployment_id, created)


def register(config: Config, openid_configuration_url: str, registration_token: str) -> RegistrationResult:
    """Run the whole registration against a platform; commits on success."""
    resolver = safe_fetch.Resolver()  # one DNS answer per host for the whole registration
    openid = fetch_openid_configuration(config, openid_configuration_url, resolver)
    payload = CourseBotsRegistration(config).lti_registration_data()
    # The endpoint comes from the configuration: as trusted as the issuer (private only when allow-listed).
    trusted = _listed(config, openid["issuer"])
    answer = post_registration(openid["registration_endpoint"], registration_token, payload, allow_private=trusted,
                               resolver=resolver)
    try:
        result = store_registration(openid, answer)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    security.forget_platform_origins()
    logger.info("registration: %s platform %s deployment %s via Dynamic Registration",
                "registered" if result.created else "updated", result.platform_id, result.deployment_id)
    return result


@registration_bp.get("/register")
def register_view() -> tuple[str, int] | Response:
    """Dynamic Registration initiation URL: register with the platform that framed us, then close the frame."""
    limited = ratelimit.check("register")
    if limited is not None:
        return limited
    config = current_config()
    openid_url = request.args.get("openid_configuration", "").strip()
    token = request.args.get("registration_token", "")
    origin = _origin(openid_url)
    # The platform frames this page; before we know its issuer, its configuration URL's origin is all we have.
    security.allow_framing_by(*((origin,) if origin else ()))
    try:
        if not origin:
            raise RegistrationError("registration_missing_parameters")
        result = register(config, openid_url, token)
    except RegistrationError as exc:
        status, message = REASONS[exc.code].status, REASONS[exc.code].message
        logger.warning("registration rejected: %s", exc.code)
        return render_template("lti/error.html", code=exc.code, message=message), status
    security.allow_framing_by(_origin(result.issuer) or origin)
    return render_template("lti/registration_complete.html", result=result, tool_name=config.tool_name,
                           created=result.created), 200
