"""A fake LTI 1.3 platform that behaves like Moodle 4.4 towards the tool, built on ``lti1p3platform``.

It serves a course page, Moodle-style launch pages (top-level, or an ``<iframe id="contentframe">`` like Moodle's
embed container), the OIDC authorization endpoint (``auth.php``), its JWKS (``certs.php``) and a deep-linking
return endpoint. Launch messages are built and signed by ``lti1p3platform``, an implementation independent of the
tool's ``pylti1p3``.
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Flask, Response, abort, request
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from pylti1p3.dynamic_registration import generate_key_pair

logger = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
CONTEXT_CLAIM_COURSE = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"


@dataclass(frozen=True)
class User:
    """A platform user (Moodle: a logged-in account enrolled in the course)."""

    id: str
    given_name: str
    family_name: str
    email: str
    roles: tuple[str, ...]
    locale: str = "en"

    @property
    def name(self) -> str:
        """Full name."""
        return f"{self.given_name} {self.family_name}"


USERS: dict[str, User] = {
    "teacher": User("2", "Tessa", "Teacher", "tessa.teacher@example.edu", (MEMBERSHIP + "Instructor",)),
    "student": User("3", "Sam", "Student", "sam.student@example.edu", (MEMBERSHIP + "Learner",)),
}


def add_user(key: str, number: str, given: str, family: str, email: str, role: str, locale: str) -> str:
    """Enrol ``key`` in the course as ``role`` (``Learner``, ``Instructor``) speaking ``locale``; returns ``key``."""
    USERS[key] = User(number, given, family, email, (MEMBERSHIP + role,), locale=locale)
    return key


@dataclass
class PlatformState:
    """Configuration and observations of one fake platform."""

    base_url: str = ""
    tool_base_url: str = ""
    client_id: str = "coursebots-browser-client"
    deployment_id: str = "1"
    context_id: str = "course-101"
    context_title: str = "Introduction to Machine Learning"
    resource_link_id: str = "cmid-7"
    private_key: str = ""
    public_key: str = ""
    launches: list[dict[str, Any]] = field(default_factory=list)  # lti1p3platform launch messages sent
    deep_link_items: list[dict[str, Any]] = field(default_factory=list)
    registration_tokens: set[str] = field(default_factory=set)  # issued, not yet used (Moodle: one use)
    registrations: list[dict[str, Any]] = field(default_factory=list)  # tool registrations received
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        """The platform's issuer (Moodle: wwwroot without trailing slash)."""
        return self.base_url

    @property
    def origin(self) -> str:
        """The platform's origin."""
        return self.base_url

    def url(self, path: str) -> str:
        """Absolute URL on the platform."""
        return self.base_url + path

    def tool_url(self, path: str) -> str:
        """Absolute URL on the tool."""
        return self.tool_base_url + path

    def registration(self, message: str = "resource") -> Registration:
        """The lti1p3platform registration of the tool on this platform."""
        registration = (Registration()
                        .set_iss(self.issuer)
                        .set_client_id(self.client_id)
                        .set_deployment_id(self.deployment_id)
                        .set_oidc_login_url(self.tool_url("/lti/login"))
                        .set_launch_url(self.tool_url("/lti/launch"))
                        .set_tool_key_set_url(self.tool_url("/lti/jwks"))
                        .set_platform_public_key(self.public_key)
                        .set_platform_private_key(self.private_key))
        if message == "deep_link":
            registration.set_deeplink_launch_url(self.tool_url("/lti/launch"))
        return registration

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        """Registered redirect URIs (Moodle compares them exactly)."""
        return (self.tool_url("/lti/launch"),)


class _PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self._state: PlatformState = kwargs["state"]
        self._message: str = kwargs.get("message", "resource")

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self._state.registration(self._message)


class _Request(Request):
    def build_metadata(self, request: Any) -> TRequest:
        return {"method": request.method, "form_data": request.form.to_dict(), "get_data": request.args.to_dict(),
                "headers": dict(request.headers), "content_type": request.content_type, "path": request.path,
                "json": None}


class _OIDCLogin(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = json.dumps(kwargs, sort_keys=True)

    def get_redirect(self, url: str) -> str:
        return url


class _MessageLaunch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return launch_data


def autopost_page(action: str, fields: dict[str, str], title: str) -> str:
    """An HTML page that auto-submits a POST form (how Moodle sends login initiation and launches)."""
    inputs = "\n".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())
    return (f"<!doctype html><html><head><title>{escape(title)}</title></head><body>"
            f'<form id="autopost" method="post" action="{escape(action)}">{inputs}'
            '<noscript><button type="submit">Continue</button></noscript></form>'
            "<script>document.getElementById('autopost').submit();</script></body></html>")


def _error(message: str, status: int = 400) -> Response:
    logger.warning("fake platform refused: %s", message)
    return Response(f'<!doctype html><p id="platform-error">{escape(message)}</p>', status, mimetype="text/html")


def create_platform_app(state: PlatformState) -> Flask:
    """The fake platform's Flask app."""
    app = Flask("fake_lti_platform")

    @app.get("/")
    def course() -> str:
        links = "".join(
            f'<li><a id="launch-{name}" href="/mod/lti/launch.php?user={name}">{escape(u.name)} ({name})</a> '
            f'<a id="launch-{name}-window" href="/mod/lti/launch.php?user={name}&framed=0">new window</a></li>'
            for name, u in USERS.items())
        return (f'<!doctype html><title>{escape(state.context_title)}</title><h1>{escape(state.context_title)}</h1>'
                f"<ul>{links}</ul>")

    @app.get("/mod/lti/launch.php")
    def launch_page() -> str:
        """Moodle's launch.php: in the embed container an iframe loads the login form, else the form itself."""
        user = request.args.get("user", "")
        message = request.args.get("message", "resource")
        if user not in USERS or message not in ("resource", "deep_link"):
            abort(404)
        if request.args.get("framed", "1") == "1":
            src = "/mod/lti/launch.php?" + urlencode({"user": user, "message": message, "framed": "0",
                                                      "target": "iframe"})
            return ("<!doctype html><html><head><title>Course activity</title><style>"
                    "iframe{width:100%;height:90vh;border:0}</style></head><body>"
                    f'<h1 id="platform-course">{escape(state.context_title)}</h1>'
                    f'<iframe id="contentframe" name="contentframe" src="{escape(src)}" '
                    'allow="microphone; camera; geolocation; clipboard-write; fullscreen" '
                    'allowfullscreen="true"></iframe></body></html>')
        target = request.args.get("target", "window")
        conf = _PlatformConf(state=state, message=message)
        login = _OIDCLogin(None, conf)
        login.set_lti_message_hint(user=user, message=message, target=target)
        if message == "deep_link":
            login.set_deeplinking_launch_url()
        url = login.prepare_preflight_url(USERS[user].id)
        parts = urlsplit(url)
        action = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return autopost_page(action, dict(parse_qsl(parts.query)), "Launching…")

    @app.route("/mod/lti/auth.php", methods=["GET", "POST"])
    def auth() -> Response | str:
        """OIDC authorization: check the tool's request as Moodle does, then auto-post the signed id_token."""
        params = request.values
        try:
            hint = json.loads(params.get("lti_message_hint", ""))
        except ValueError:
            return _error("invalid_request: lti_message_hint")
        name = str(hint.get("user", ""))
        user = USERS.get(name)
        if params.get("scope") != "openid" or params.get("response_type") != "id_token":
            return _error("invalid_request: scope/response_type")
        if params.get("response_mode") != "form_post" or params.get("prompt") != "none":
            return _error("invalid_request: response_mode/prompt")
        if params.get("client_id") != state.client_id:
            return _error("unauthorized_client")
        if params.get("redirect_uri") not in state.redirect_uris:
            return _error("invalid_request: redirect_uri does not match a registered redirection URI")
        if user is None or params.get("login_hint") != user.id:
            return _error("access_denied: login_hint")
        message = hint.get("message", "resource")
        conf = _PlatformConf(state=state, message=message)
        launch = _MessageLaunch(_Request(request), conf)
        launch.set_user_data(user.id, list(user.roles), full_name=user.name, email_address=user.email)
        launch.set_launch_context_claim(state.context_id, [CONTEXT_CLAIM_COURSE], state.context_title, "ML101")
        # Moodle sends the user's language only inside launch_presentation (no top-level "locale" claim).
        launch.set_extra_claims({
            "given_name": user.given_name, "family_name": user.family_name,
            CLAIM + "launch_presentation": {"locale": user.locale, "document_target": hint.get("target", "iframe"),
                                            "return_url": state.url("/")},
            CLAIM + "tool_platform": {"product_family_code": "moodle", "version": "2024042200",
                                      "guid": urlsplit(state.base_url).netloc, "name": "Fake Moodle"},
            CLAIM + "lis": {"person_sourcedid": "", "course_section_sourcedid": ""},
            CLAIM + "ext": {"user_username": name, "lms": "moodle-2"},
            CLAIM + "custom": {}})
        if message == "deep_link":
            launch.set_dl(state.url("/mod/lti/contentitem_return.php"), title=state.context_title,
                          accept_types={"ltiResourceLink"})
        else:
            launch.set_resource_link_claim(state.resource_link_id, title="Course chatbot")
        try:
            data = launch.lti_launch()
        except Exception as exc:  # lti1p3platform's preflight validation
            return _error(f"invalid_request: {type(exc).__name__}")
        with state.lock:
            state.launches.append(launch.get_launch_message())
        return autopost_page(data["launch_url"], {"id_token": data["id_token"], "state": data["state"]},
                             "Launching…")

    @app.get("/mod/lti/certs.php")
    def certs() -> Response:
        return Response(json.dumps({"keys": state.registration().get_jwks()}), mimetype="application/json")

    @app.post("/mod/lti/contentitem_return.php")
    def deep_link_return() -> Response | str:
        """Receive an LtiDeepLinkingResponse and show what was added."""
        conf = _PlatformConf(state=state)
        conf.get_registration()
        try:
            items = conf.validate_deeplinking_resp(request.form.to_dict())
        except Exception as exc:
            return _error(f"invalid deep linking response: {type(exc).__name__}")
        with state.lock:
            state.deep_link_items.extend(items)
        titles = "".join(f"<li>{escape(str(i.get('title', '')))}</li>" for i in items)
        return f'<!doctype html><main data-page="platform-deep-link-return"><ul>{titles}</ul></main>'

    _add_dynamic_registration(app, state)
    return app


def _add_dynamic_registration(app: Flask, state: PlatformState) -> None:
    """Moodle's Dynamic Registration: the admin page framing the tool, openid-configuration, registration."""

    @app.get("/mod/lti/toolconfigure.php")
    def add_lti_advantage() -> str:
        """"Manage tools" > "Add LTI Advantage": frame the tool's registration URL, close on its message."""
        token = secrets.token_urlsafe(16)
        with state.lock:
            state.registration_tokens.add(token)
        src = request.args["url"] + "?" + urlencode({
            "openid_configuration": state.url("/mod/lti/openid-configuration.php"), "registration_token": token})
        return ("<!doctype html><html><body><h1>Manage tools</h1>"
                '<p id="registration-status">pending</p>'
                f'<iframe id="registration-frame" src="{escape(src)}"></iframe><script>'
                "window.addEventListener('message', function (e) {"
                "  if (e.data && e.data.subject === 'org.imsglobal.lti.close') {"
                "    document.getElementById('registration-status').textContent = 'closed';"
                "    document.getElementById('registration-frame').remove(); }});"
                "</script></body></html>")

    @app.get("/mod/lti/openid-configuration.php")
    def openid_configuration() -> Response:
        return Response(json.dumps({
            "issuer": state.issuer, "authorization_endpoint": state.url("/mod/lti/auth.php"),
            "token_endpoint": state.url("/mod/lti/token.php"), "jwks_uri": state.url("/mod/lti/certs.php"),
            "registration_endpoint": state.url("/mod/lti/openid-registration.php"),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"], "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"], "id_token_signing_alg_values_supported": ["RS256"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle", "version": "4.4",
                "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]},
        }), mimetype="application/json")

    @app.post("/mod/lti/openid-registration.php")
    def openid_registration() -> Response:
        auth = request.headers.get("Authorization", "")
        with state.lock:
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
            if token not in state.registration_tokens:
                return Response('{"error": "invalid_token"}', 401, mimetype="application/json")
            state.registration_tokens.discard(token)
        payload = request.get_json(force=True)
        tool_conf = payload.get("https://purl.imsglobal.org/spec/lti-tool-configuration", {})
        if payload.get("token_endpoint_auth_method") != "private_key_jwt" or not tool_conf.get("domain") \
                or urlsplit(tool_conf.get("target_link_uri", "")).netloc != tool_conf["domain"]:
            return Response('{"error": "invalid_registration"}', 400, mimetype="application/json")
        with state.lock:
            state.registrations.append(payload)
            number = len(state.registrations)
        answer = dict(payload, client_id=f"dynamic-client-{number}")
        answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = dict(
            tool_conf, deployment_id=str(100 + number))
        return Response(json.dumps(answer), mimetype="application/json")


def new_platform_state(tool_base_url: str) -> PlatformState:
    """A platform state with a fresh RSA key pair (the base URL is filled once the server listens)."""
    private_key, public_key = generate_key_pair(2048)
    return PlatformState(tool_base_url=tool_base_url, private_key=private_key, public_key=public_key,
                         client_id="coursebots-" + secrets.token_hex(4))
