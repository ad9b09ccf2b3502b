"""A fake LTI 1.3 platform for tests: launch messages built by the independent ``lti1p3platform`` package.

Reusable outside this folder (browser harness): load this file and use :class:`FakePlatform` or the
``platform`` fixture. The platform serves its JWKS from a real HTTP server on 127.0.0.1 (in a thread), so
the tool fetches keys exactly as it does from Moodle's ``certs.php``; ``jwks_mode`` makes it fail on demand.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from jwcrypto.jwk import JWK
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.registration import Registration as PlatformRegistration
from lti1p3platform.request import Request as PlatformRequest
from werkzeug.test import TestResponse

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR = [ROLE + "Instructor", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"]
LEARNER = [ROLE + "Learner", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"]
TOOL_BASE = "http://localhost:5000"


@dataclass
class PlatformKey:
    """One RSA key of the platform: private PEM for signing and its public JWK (kid = thumbprint)."""

    private_pem: str
    public_pem: str
    kid: str
    jwk: dict[str, Any]

    @classmethod
    def generate(cls) -> "PlatformKey":
        """A fresh 2048-bit key."""
        key = JWK.generate(kty="RSA", size=2048)
        kid = key.thumbprint()
        public = key.export_public(as_dict=True)
        public.update({"kid": kid, "alg": "RS256", "use": "sig"})
        return cls(key.export_to_pem(private_key=True, password=None).decode(),
                   key.export_to_pem().decode(), kid, public)


@dataclass
class Preflight:
    """The tool's OIDC authentication request, as the platform's auth endpoint receives it."""

    params: dict[str, str]

    @property
    def state(self) -> str:
        """The state the tool issued."""
        return self.params["state"]

    @property
    def nonce(self) -> str:
        """The nonce the tool issued."""
        return self.params["nonce"]


class _PreflightRequest(PlatformRequest):
    def build_metadata(self, request: Any) -> Any:
        return {"method": "GET", "form_data": {}, "get_data": dict(request), "headers": {},
                "content_type": None, "path": "/mod/lti/auth.php", "json": None}


class _PlatformConf(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self.platform: FakePlatform = kwargs["platform"]

    def get_registration_by_params(self, **kwargs: Any) -> PlatformRegistration:
        p = self.platform
        return (PlatformRegistration().set_iss(p.issuer).set_client_id(p.client_id)
                .set_deployment_id(p.deployment_id).set_launch_url(TOOL_BASE + "/lti/launch")
                .set_deeplink_launch_url(TOOL_BASE + "/lti/launch").set_oidc_login_url(TOOL_BASE + "/lti/login")
                .set_platform_private_key(p.key.private_pem).set_platform_public_key(p.key.public_pem)
                .set_tool_key_set_url(TOOL_BASE + "/lti/jwks"))


class _PlatformLaunch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return launch_data


class _JwksHandler(BaseHTTPRequestHandler):
    platform: "FakePlatform"

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        self.platform.jwks_requests += 1
        if self.platform.jwks_mode == "down" or not self.path.startswith("/mod/lti/certs.php"):
            self.send_response(503 if self.platform.jwks_mode == "down" else 404)
            self.end_headers()
            return
        body = json.dumps(self.platform.jwks()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass
class FakePlatform:
    """A Moodle-like platform: issuer = its base URL, endpoints under /mod/lti/, JWKS served over HTTP."""

    client_id: str = field(default_factory=lambda: "client-" + uuid.uuid4().hex[:10])
    deployment_id: str = "1"
    keys: list[PlatformKey] = field(default_factory=lambda: [PlatformKey.generate()])
    jwks_mode: str = "ok"  # "ok" | "down" (503)
    jwks_requests: int = 0
    issuer: str = ""
    _server: ThreadingHTTPServer | None = None

    @property
    def key(self) -> PlatformKey:
        """The key the platform signs with now (the newest)."""
        return self.keys[-1]

    def start(self) -> "FakePlatform":
        """Serve the JWKS on a free port of 127.0.0.1; the issuer becomes that base URL."""
        handler = type("Handler", (_JwksHandler,), {"platform": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        """Stop the JWKS server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def jwks(self) -> dict[str, Any]:
        """The platform's published keys (all of them: old keys stay published after rotation)."""
        return {"keys": [k.jwk for k in self.keys]}

    def rotate(self) -> PlatformKey:
        """Start signing with a new key, keeping the old one published."""
        self.keys.append(PlatformKey.generate())
        return self.key

    def urls(self) -> dict[str, str]:
        """The endpoints an admin copies from Moodle's tool configuration details."""
        return {"auth_url": self.issuer + "/mod/lti/auth.php", "token_url": self.issuer + "/mod/lti/token.php",
                "jwks_url": self.issuer + "/mod/lti/certs.php"}

    def register(self, app: Flask, *extra_deployments: str) -> Result:
        """Register with the tool through its CLI, as an administrator would (manual registration)."""
        urls = self.urls()
        args = ["lti", "platform-add", "--issuer", self.issuer, "--client-id", self.client_id,
                "--deployment-id", self.deployment_id, "--auth-url", urls["auth_url"],
                "--token-url", urls["token_url"], "--jwks-url", urls["jwks_url"], "--name", "Test Moodle"]
        for deployment in extra_deployments:
            args += ["--deployment-id", deployment]
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 0, result.output
        return result

    # --- the OIDC login, driven like Moodle's launch.php auto-submitted form ---

    def login_params(self, **overrides: str) -> dict[str, str]:
        """The third-party-initiated login parameters Moodle posts to the tool."""
        params = {"iss": self.issuer, "login_hint": "2", "target_link_uri": TOOL_BASE + "/lti/launch",
                  "lti_message_hint": json.dumps({"cmid": 7, "launchid": uuid.uuid4().hex}),
                  "client_id": self.client_id, "lti_deployment_id": self.deployment_id}
        params.update(overrides)
        return params

    def login(self, client: FlaskClient, method: str = "POST", **overrides: str) -> Preflight:
        """Run the OIDC login through the cookie-check page; return the tool's authentication request."""
        params = self.login_params(**overrides)
        page = client.post("/lti/login", data=params) if method == "POST" else client.get(
            "/lti/login", query_string=params)
        assert page.status_code == 200 and b'id="lti-login"' in page.data, page.data[:500]
        # What the cookie-check page's script submits when the test cookie sticks.
        response = client.post("/lti/login", data={**params, "lti1p3_new_window": "1"})
        return self.preflight_from(response)

    def preflight_from(self, response: TestResponse) -> Preflight:
        """The authentication request in the tool's redirect to the platform's auth URL."""
        assert response.status_code == 302, response.data[:500]
        location = response.headers["Location"]
        assert location.startswith(self.urls()["auth_url"] + "?"), location
        return Preflight(dict(parse_qsl(urlsplit(location).query)))

    # --- launch messages ---

    def _launch(self, preflight: Preflight, roles: list[str], deep_linking: bool,
                context_title: str) -> _PlatformLaunch:
        conf = _PlatformConf(platform=self)
        launch = _PlatformLaunch(_PreflightRequest(preflight.params), conf)
        launch._registration = conf.get_registration()
        launch.validate_preflight_response(preflight.params)
        launch.set_user_data("2", roles, full_name="Ada Lovelace", email_address="ada@example.edu")
        launch.set_resource_link_claim("rl-7", title="Ask the course bot")
        launch.set_launch_context_claim("course-42", context_types=["http://purl.imsglobal.org/vocab/lis/v2/course#"
                                                                    "CourseOffering"],
                                        context_title=context_title, context_label="PHY101")
        launch.set_launch_presentation_claim(document_target="iframe", return_url=self.issuer + "/course/view.php")
        launch.set_extra_claims({"given_name": "Ada", "family_name": "Lovelace",
                                 CLAIM + "launch_presentation": {"document_target": "iframe", "locale": "de",
                                                                 "return_url": self.issuer + "/course"}})
        if deep_linking:
            launch.set_dl(self.issuer + "/mod/lti/contentitem_return.php", title="Add CourseBots",
                          accept_types={"ltiResourceLink"}, extra_data={"moodle": "opaque"})
        return launch

    def id_token(self, preflight: Preflight, roles: list[str] | None = None, deep_linking: bool = False,
                 context_title: str = "Physics 101") -> str:
        """A launch id_token built and signed by lti1p3platform (what a real platform would post)."""
        launch = self._launch(preflight, roles or LEARNER, deep_linking, context_title)
        launch._registration = launch._platform_config.get_registration()
        return str(launch.generate_launch_request()["id_token"])

    def claims(self, preflight: Preflight, roles: list[str] | None = None, deep_linking: bool = False,
               context_title: str = "Physics 101") -> dict[str, Any]:
        """The launch message lti1p3platform builds, unsigned, with fresh iat/exp: the base of defect tokens."""
        token = self.id_token(preflight, roles, deep_linking, context_title)
        claims = jwt.decode(token, options={"verify_signature": False})
        now = int(time.time())
        claims.update(iat=now, exp=now + 300)
        return claims

    def sign(self, claims: dict[str, Any], *, key: PlatformKey | None = None, alg: str = "RS256",
             kid: str | None = None, secret: str | bytes | None = None, headers: dict[str, Any] | None = None) -> str:
        """Sign claims with pyjwt (for tokens with exactly one defect)."""
        key = key or self.key
        header = {"kid": key.kid if kid is None else kid, **(headers or {})}
        if kid == "":
            header.pop("kid")
        if alg == "none":
            return jwt.encode(claims, None, algorithm="none", headers=header)
        signing_key: Any = secret if secret is not None else key.private_pem
        if alg.startswith("HS"):
            return _hmac_jwt(claims, signing_key, alg, header)
        return jwt.encode(claims, signing_key, algorithm=alg, headers=header)

    @staticmethod
    def post_launch(client: FlaskClient, id_token: str | None, state: str | None) -> TestResponse:
        """POST the launch form to the tool's redirect URI, as the platform's auto-submitted form does."""
        data = {k: v for k, v in (("id_token", id_token), ("state", state)) if v is not None}
        return client.post("/lti/launch", data=data)

    def launch(self, client: FlaskClient, roles: list[str] | None = None, deep_linking: bool = False,
               context_title: str = "Physics 101") -> TestResponse:
        """A whole launch: login, authentication, signed id_token posted back."""
        preflight = self.login(client)
        return self.post_launch(client, self.id_token(preflight, roles, deep_linking, context_title),
                                preflight.state)

    def accept_deep_link_response(self, response_jwt: str, tool_jwks: dict[str, Any]) -> list[dict[str, Any]]:
        """Verify a tool's LtiDeepLinkingResponse as the platform does (lti1p3platform); return its items."""
        conf = _PlatformConf(platform=self)
        conf.get_registration().set_tool_key_set(tool_jwks)  # type: ignore[arg-type]
        conf.set_accepted_deeplinking_types(["ltiResourceLink"])
        return conf.validate_deeplinking_resp({"JWT": response_jwt})


def _hmac_jwt(claims: dict[str, Any], secret: str | bytes, alg: str, header: dict[str, Any]) -> str:
    """An HS* JWT keyed with arbitrary bytes (pyjwt refuses PEM public keys as HMAC secrets, attackers don't)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = b64(json.dumps({"alg": alg, "typ": "JWT", **header}).encode()) + "." + b64(
        json.dumps(claims).encode())
    raw = secret.encode() if isinstance(secret, str) else secret
    return signing_input + "." + b64(hmac.new(raw, signing_input.encode(), digest).digest())


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    """A fake platform serving its JWKS (not yet registered: call ``platform.register(app)``)."""
    fake = FakePlatform().start()
    yield fake
    fake.stop()


@pytest.fixture
def registered_platform(app: Flask, platform: FakePlatform) -> FakePlatform:
    """The fake platform, registered with the app through the CLI."""
    platform.register(app)
    return platform
