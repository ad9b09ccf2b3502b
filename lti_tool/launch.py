"""LTI 1.3 OIDC login and launch validation: the only module that drives pylti1p3's login and launch classes.

Every check has its own reason code (lti_tool.reasons) and runs explicitly, in :func:`validate_launch`, in an
order that never consumes a nonce before everything else passed. Design notes: docs/LTI.md.
"""
from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Response, make_response, render_template, request
from pylti1p3.contrib.flask import FlaskCookieService, FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from sqlalchemy import delete

from lti_tool.context import LaunchContext, map_roles
from lti_tool.extensions import current_config, db, utcnow
from lti_tool.models import LaunchState, Platform
from lti_tool.reasons import LaunchRejected, allow_framing_by_issuer, rejection_response
from lti_tool.security import allow_framing_by
from lti_tool.tool_config import DatabaseToolConf, find_deployment, find_platform, platform_key_set

logger = logging.getLogger(__name__)

STATE_LIFETIME_SECONDS = 600  # login -> platform -> launch, plus time to click "open in a new window"
COOKIE_PREFIX = "coursebots-lti"  # never "MoodleSession": tool and Moodle may share a host in tests
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"
LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "lti_deployment_id", "client_id")
# Longest accepted login parameters: generous for real platforms, small enough that a login stores little.
LOGIN_PARAM_MAX = {"iss": 255, "client_id": 255, "lti_deployment_id": 255, "login_hint": 1024,
                   "target_link_uri": 2048, "lti_message_hint": 4096}


class LaunchStateStorage(LaunchDataStorage[Any]):
    """pylti1p3 launch data storage in the LaunchState table: shared by all worker processes, expiring."""

    def get_session_cookie_name(self) -> str | None:
        """No session cookie: keys are unguessable (nonces, states), so they need no per-browser prefix."""
        return None

    def can_set_keys_expiration(self) -> bool:
        """Every row has an expiry."""
        return True

    def get_value(self, key: str) -> Any:
        """The stored value, or None when absent or expired."""
        row = db.session.get(LaunchState, self._prepare_key(key))
        return row.value if row is not None and row.expires_at > utcnow() else None

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        """Store a value for ``exp`` seconds (the caller's request commits)."""
        lifetime = exp or STATE_LIFETIME_SECONDS
        db.session.merge(LaunchState(key=self._prepare_key(key), value=value,
                                     expires_at=utcnow() + timedelta(seconds=lifetime)))

    def check_value(self, key: str) -> bool:
        """Whether a live value exists."""
        return self.get_value(key) is not None


class StateCookieService(FlaskCookieService):
    """The state cookie, always ``Secure; SameSite=None; Partitioned``.

    pylti1p3 only adds these on HTTPS; ``http://localhost`` is a secure context in browsers, and a framed
    launch (Moodle's default) only keeps a partitioned cookie, so every origin gets the production attributes.
    """

    _cookie_prefix = COOKIE_PREFIX

    def update_response(self, response: Response) -> None:
        """Write the pending cookies with the attributes a framed, cross-site launch needs."""
        for key, data in self._cookie_data_to_set.items():
            # As long as the server-side state (pylti1p3 says 5 minutes): a slow platform login must not leave
            # a launch with an expired cookie beside another tab's live one (that would read as login CSRF).
            response.set_cookie(key, str(data["value"]), max_age=STATE_LIFETIME_SECONDS, path="/lti/", secure=True,
                                httponly=True, samesite="None", partitioned=True)


class _Login(FlaskOIDCLogin):
    cookie_check_template_name = "lti/cookie_check.html"


def _storage(flask_request: FlaskRequest) -> LaunchStateStorage:
    storage = LaunchStateStorage()
    storage.set_request(flask_request)
    return storage


def _fernet() -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"coursebots/relaunch/v1").derive(
        current_config().secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def _state_key(state: str) -> str:
    return f"coursebots-state-{state}"


def _used_nonce_key(nonce: str) -> str:
    return f"coursebots-used-nonce-{nonce}"


def start_login(params: Mapping[str, str] | None = None) -> Response:
    """OIDC third-party-initiated login: check cookies in the frame, then redirect to the platform's auth URL."""
    data = dict(params) if params is not None else {k: v for k, v in request.values.items()}
    flask_request = FlaskRequest(request_data=data or {"_": ""})
    issuer, client_id = data.get("iss", ""), data.get("client_id") or None
    if not login_well_formed(data):
        return rejection_response(LaunchRejected("login_invalid", issuer if len(issuer) <= 255 else ""))
    platform = find_platform(issuer, client_id)
    if platform is None:
        return rejection_response(LaunchRejected("unknown_platform", issuer))
    allow_framing_by(platform.origin)
    deployment_id = data.get("lti_deployment_id")
    if deployment_id and find_deployment(platform, deployment_id) is None:
        # Refused before the platform round trip: the launch would fail the same way, only later.
        return rejection_response(LaunchRejected("unknown_deployment", issuer, deployment_id))
    cookies = StateCookieService(flask_request)
    storage = _storage(flask_request)
    login = _Login(flask_request, DatabaseToolConf(), session_service=None, cookie_service=cookies,
                   launch_data_storage=storage)
    login.set_launch_data_storage(storage).set_launch_data_lifetime(STATE_LIFETIME_SECONDS)
    if not data.get("lti1p3_new_window"):
        # First visit: a page tests a partitioned cookie inside the frame before we rely on one.
        login.enable_check_cookies()
        return make_response(login.get_cookies_allowed_js_check())
    try:
        redirect = login.get_redirect_object(current_config().url("/lti/launch"))
    except OIDCException:
        return rejection_response(LaunchRejected("unknown_platform", issuer))
    query = parse_qs(urlsplit(redirect.get_redirect_url()).query)
    state, nonce = query["state"][0], query["nonce"][0]
    relaunch = {k: data[k] for k in LOGIN_PARAMS if data.get(k)}
    db.session.merge(LaunchState(key=_state_key(state), expires_at=utcnow() + timedelta(
        seconds=STATE_LIFETIME_SECONDS), value={
            "nonce": nonce, "issuer": platform.issuer, "client_id": platform.client_id,
            # The platform's login_hint identifies the user: kept only encrypted, only for the relaunch path.
            "relaunch": _fernet().encrypt(json.dumps(relaunch).encode("utf-8")).decode("ascii")}))
    db.session.execute(delete(LaunchState).where(LaunchState.expires_at < utcnow()))
    db.session.commit()
    logger.info("login issuer=%s deployment=%s", platform.issuer, data.get("lti_deployment_id", ""))
    response: Response = redirect.do_redirect()
    return response


def login_well_formed(data: Mapping[str, str]) -> bool:
    """Required OIDC parameters present, none overlong, and ``target_link_uri`` on this tool's base URL."""
    if not all(data.get(key) for key in ("iss", "login_hint", "target_link_uri")):
        return False
    if any(len(data.get(key) or "") > limit for key, limit in LOGIN_PARAM_MAX.items()):
        return False
    base, target = current_config().base_url, data["target_link_uri"]
    return target == base or target.startswith(base + "/")


def relaunch(state: str) -> Response:
    """Restart a login whose launch arrived without its state cookie, now in a top-level window."""
    row = db.session.get(LaunchState, _state_key(state))
    if row is None or row.expires_at <= utcnow():
        return rejection_response(LaunchRejected("state_unknown"))
    try:
        params = json.loads(_fernet().decrypt(row.value["relaunch"].encode("ascii")))
    except (InvalidToken, KeyError, ValueError):
        return rejection_response(LaunchRejected("state_unknown"))
    db.session.delete(row)
    db.session.commit()
    params["lti1p3_new_window"] = "1"
    return start_login(params)


class CookiesBlocked(Exception):
    """The launch arrived without any state cookie although the login was ours: continue in a new window."""

    def __init__(self, state: str, issuer: str) -> None:
        super().__init__(state)
        self.state = state
        self.issuer = issuer


class _Launch(FlaskMessageLaunch):
    """pylti1p3's launch with our state binding and without storing the launch (it holds personal data)."""

    expected_client_id: str = ""

    def get_client_id(self) -> str:
        """The client id the login was for, when the token's ``aud`` contains it."""
        return self.expected_client_id or str(super().get_client_id())

    def save_launch_data(self) -> "_Launch":
        """Never persist the launch: its body holds names, e-mails and the user's ``sub``."""
        return self


def _header(id_token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.DecodeError as exc:
        raise LaunchRejected("token_malformed") from exc
    alg = str(header.get("alg", ""))
    if alg.lower() == "none":
        raise LaunchRejected("alg_none")
    if alg.upper().startswith("HS"):
        raise LaunchRejected("alg_symmetric")
    if alg != "RS256":
        raise LaunchRejected("alg_unsupported")
    return header


def _check_state(state: str, body: dict[str, Any]) -> dict[str, Any]:
    """The login record for ``state``, after binding it to this browser's cookie."""
    record = db.session.get(LaunchState, _state_key(state))
    nonce = body.get("nonce")
    if record is None or record.expires_at <= utcnow():
        if nonce and db.session.get(LaunchState, _used_nonce_key(str(nonce))) is not None:
            raise LaunchRejected("nonce_replayed", str(body.get("iss", "")))
        raise LaunchRejected("state_unknown", str(body.get("iss", "")))
    value: dict[str, Any] = record.value
    cookie = request.cookies.get(f"{COOKIE_PREFIX}-{state}")
    if cookie is None:
        if any(name.startswith(COOKIE_PREFIX + "-state-") for name in request.cookies):
            # This browser keeps our cookies, but not for this state: another browser's login (login CSRF).
            raise LaunchRejected("state_mismatch", value["issuer"])
        if nonce != value["nonce"]:
            raise LaunchRejected("nonce_mismatch", value["issuer"])
        raise CookiesBlocked(state, value["issuer"])
    if cookie != state:
        raise LaunchRejected("state_mismatch", value["issuer"])
    return value


def _verify_signature(message: _Launch, platform: Platform, id_token: str, header: dict[str, Any],
                      login: dict[str, Any]) -> dict[str, Any]:
    kid = header.get("kid")
    if not kid:
        raise LaunchRejected("kid_missing", platform.issuer)
    registration = message._registration
    assert registration is not None, "validate_registration() runs first"
    key_set: Any = platform_key_set(platform, str(kid))
    registration.set_key_set(key_set)
    try:
        public_key, alg = message.get_public_key()
    except LtiException as exc:
        raise LaunchRejected("unknown_kid", platform.issuer) from exc
    try:
        return jwt.decode(id_token, public_key, algorithms=["RS256"], audience=login["client_id"],
                          issuer=login["issuer"], leeway=current_config().jwt_leeway_seconds,
                          options={"require": ["exp", "iat", "iss", "aud"]})
    except jwt.InvalidSignatureError as exc:
        raise LaunchRejected("bad_signature", platform.issuer) from exc
    except jwt.ExpiredSignatureError as exc:
        raise LaunchRejected("token_expired", platform.issuer) from exc
    except jwt.ImmatureSignatureError as exc:
        raise LaunchRejected("iat_in_future", platform.issuer) from exc
    except jwt.MissingRequiredClaimError as exc:
        raise LaunchRejected("claims_missing", platform.issuer) from exc
    except jwt.InvalidAudienceError as exc:
        raise LaunchRejected("wrong_audience", platform.issuer) from exc
    except jwt.InvalidIssuerError as exc:
        raise LaunchRejected("wrong_issuer", platform.issuer) from exc
    except jwt.InvalidTokenError as exc:
        raise LaunchRejected("token_malformed", platform.issuer) from exc


def _check_message(message: _Launch, body: dict[str, Any], issuer: str, deployment_id: str) -> None:
    if body.get(CLAIM + "version") != "1.3.0":
        raise LaunchRejected("wrong_version", issuer, deployment_id)
    message_type = body.get(CLAIM + "message_type")
    if message_type not in (RESOURCE_LINK, DEEP_LINKING):
        raise LaunchRejected("wrong_message_type", issuer, deployment_id)
    # A course bot is identified by its context, so CourseBots needs the (optional in LTI) context claim.
    if not isinstance(body.get(CLAIM + "roles"), list) or not (body.get(CLAIM + "context") or {}).get("id") or (
            message_type == RESOURCE_LINK and not body.get(CLAIM + "resource_link", {}).get("id")) or (
            message_type == DEEP_LINKING and not (body.get(DL_SETTINGS) or {}).get("deep_link_return_url")):
        raise LaunchRejected("claims_missing", issuer, deployment_id)
    # pylti1p3's validators require `sub`, which LTI 1.3 leaves out of anonymous launches: give them one.
    header: Any = message._jwt.get("header", {})
    with_sub: Any = {"sub": "anonymous", **body}
    message.set_jwt({"header": header, "body": with_sub})
    try:
        message.validate_message()
    except LtiException as exc:
        raise LaunchRejected("claims_missing", issuer, deployment_id) from exc
    original: Any = body
    message.set_jwt({"header": header, "body": original})


def _consume_nonce(nonce: str, issuer: str, expires: datetime) -> None:
    """Mark the nonce used, atomically across processes: only one DELETE can remove the issued row."""
    removed = db.session.execute(delete(LaunchState).where(LaunchState.key == f"lti1p3-nonce-{nonce}"))
    if removed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise LaunchRejected("nonce_replayed", issuer)
    db.session.merge(LaunchState(key=_used_nonce_key(nonce), value=True, expires_at=expires))


def validate_launch() -> LaunchContext:
    """Validate the POSTed launch (raises LaunchRejected or CookiesBlocked) and return its context."""
    id_token = request.form.get("id_token", "")
    if not id_token:
        raise LaunchRejected("id_token_missing")
    try:
        unverified = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.DecodeError as exc:
        raise LaunchRejected("token_malformed") from exc
    try:
        return _validate(id_token, unverified)
    except LaunchRejected as exc:
        # The claimed issuer only decides who may frame the error page; logs get it printable and short.
        claimed = "".join(ch for ch in str(unverified.get("iss", "")) if ch.isprintable())[:200]
        exc.issuer = exc.issuer or claimed
        raise


def _validate(id_token: str, unverified: dict[str, Any]) -> LaunchContext:
    header = _header(id_token)
    state = request.form.get("state", "")
    if not state:
        raise LaunchRejected("state_missing")
    login = _check_state(state, unverified)
    issuer, client_id = login["issuer"], login["client_id"]
    if unverified.get("iss") != issuer:
        raise LaunchRejected("wrong_issuer", issuer)
    audience = unverified.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise LaunchRejected("wrong_audience", issuer)
    if ("azp" in unverified or len(audiences) > 1) and unverified.get("azp") != client_id:
        raise LaunchRejected("wrong_azp", issuer)
    if unverified.get("nonce") != login["nonce"]:
        raise LaunchRejected("nonce_mismatch", issuer)
    platform = find_platform(issuer, client_id)
    if platform is None:
        raise LaunchRejected("unknown_issuer", issuer)
    flask_request = FlaskRequest(request_data={"id_token": id_token, "state": state})
    message = _Launch(flask_request, DatabaseToolConf(), cookie_service=StateCookieService(flask_request),
                      launch_data_storage=_storage(flask_request))
    message.expected_client_id = client_id
    message.set_auto_validation(enable=False)
    message.validate_jwt_format()
    try:
        message.validate_registration()
    except LtiException as exc:
        raise LaunchRejected("unknown_issuer", issuer) from exc
    body = _verify_signature(message, platform, id_token, header, login)
    deployment_id = str(body.get(CLAIM + "deployment_id", ""))
    if not deployment_id:
        raise LaunchRejected("claims_missing", issuer)
    if find_deployment(platform, deployment_id) is None:
        raise LaunchRejected("unknown_deployment", issuer, deployment_id)
    try:
        message.validate_deployment()  # pylti1p3's own lookup through DatabaseToolConf agrees, or we stop
    except LtiException as exc:
        raise LaunchRejected("unknown_deployment", issuer, deployment_id) from exc
    _check_message(message, body, issuer, deployment_id)
    expires = datetime.fromtimestamp(int(body["exp"]) + current_config().jwt_leeway_seconds, timezone.utc)
    _consume_nonce(str(body["nonce"]), issuer, max(expires, utcnow() + timedelta(seconds=STATE_LIFETIME_SECONDS)))
    db.session.execute(delete(LaunchState).where(LaunchState.key == _state_key(state)))
    db.session.commit()
    return build_context(body, platform)


def build_context(body: Mapping[str, Any], platform: Platform) -> LaunchContext:
    """The LaunchContext of a validated launch body (transient: it holds the user's sub and names)."""
    context = body.get(CLAIM + "context") or {}
    presentation = body.get(CLAIM + "launch_presentation") or {}
    names = tuple(str(body[k]) for k in ("given_name", "family_name", "name") if body.get(k))
    return LaunchContext(
        issuer=platform.issuer, client_id=platform.client_id, deployment_id=str(body[CLAIM + "deployment_id"]),
        context_id=str(context.get("id", "")), context_title=str(context.get("title") or context.get("label") or ""),
        resource_link_id=str((body.get(CLAIM + "resource_link") or {}).get("id", "")),
        message_type=str(body[CLAIM + "message_type"]), roles=map_roles(body.get(CLAIM + "roles")),
        locale=str(presentation.get("locale", "")), user_sub=str(body["sub"]) if body.get("sub") else None,
        names=names, target_link_uri=str(body.get(CLAIM + "target_link_uri", "")), platform_id=platform.id,
        deep_link_settings=dict(body.get(DL_SETTINGS) or {}))


def cookies_blocked_response(blocked: CookiesBlocked) -> Response:
    """The one-click "continue in a new window" page for a launch whose state cookie the browser refused."""
    allow_framing_by_issuer(blocked.issuer)
    logger.info("launch without state cookie: offering a new window issuer=%s", blocked.issuer)
    return make_response(render_template("lti/new_window.html", state=blocked.state))
