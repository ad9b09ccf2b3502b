"""Dynamic Registration against a Moodle-like platform registration endpoint served by the test itself."""
from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import func, select
from werkzeug.serving import make_server

from lti_tool import safe_fetch
from lti_tool.extensions import db
from lti_tool.models import Deployment, Platform
from lti_tool.reasons import REASONS

TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"


@dataclass
class FakeMoodle:
    """A platform that answers like Moodle 4.4's openid-configuration.php and openid-registration.php."""

    base: str = ""
    token: str = "moodle-registration-token"
    client_id: str = "Zq3cN8kPp0aXyZ1"
    deployment_id: str = "7"
    issuer: str | None = None  # defaults to ``base`` (Moodle: wwwroot)
    reject_status: int | None = None
    omit_deployment: bool = False
    delay_seconds: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Flask:
        """The platform's Flask app."""
        app = Flask("fake_moodle")

        @app.get("/mod/lti/openid-configuration.php")
        def openid_configuration() -> Any:
            self.requests.append({"path": request.path, "host": request.host})
            time.sleep(self.delay_seconds)
            return jsonify({
                "issuer": self.issuer or self.base,
                "token_endpoint": f"{self.base}/mod/lti/token.php",
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
                "jwks_uri": f"{self.base}/mod/lti/certs.php",
                "authorization_endpoint": f"{self.base}/mod/lti/auth.php",
                "registration_endpoint": f"{self.base}/mod/lti/openid-registration.php",
                "scopes_supported": ["openid"],
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public", "pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
                "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                    "product_family_code": "moodle", "version": "4.4",
                    "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
                    "variables": []},
            })

        @app.post("/mod/lti/openid-registration.php")
        def openid_registration() -> Any:
            payload = request.get_json(force=True)
            self.requests.append({"path": request.path, "auth": request.headers.get("Authorization"),
                                  "payload": payload, "host": request.host})
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return jsonify({"error": "invalid_token"}), 401
            if self.reject_status:
                return jsonify({"error": "rejected"}), self.reject_status
            problem = moodle_validation_problem(payload)
            if problem:
                return problem, 400
            answer = dict(payload)
            answer["client_id"] = self.client_id
            answer["registration_access_token"] = "secret-to-drop"
            tool_conf = dict(payload[TOOL_CONF])
            if not self.omit_deployment:
                tool_conf["deployment_id"] = self.deployment_id
            answer[TOOL_CONF] = tool_conf
            return jsonify(answer)

        return app


def moodle_validation_problem(payload: dict[str, Any]) -> str | None:
    """The checks of Moodle's registration_helper::registration_to_config (4.4), as error strings."""
    if payload.get("application_type") != "web":
        return "invalid_application_type"
    if "id_token" not in payload.get("response_types", []):
        return "invalid_response_types"
    if not {"implicit", "client_credentials"} <= set(payload.get("grant_types", [])):
        return "invalid_grant_types"
    for key in ("initiate_login_uri", "redirect_uris", "client_name", "jwks_uri"):
        if not payload.get(key):
            return f"missing {key}"
    if payload.get("token_endpoint_auth_method") != "private_key_jwt":
        return "invalid_token_endpoint_auth_method"
    conf = payload.get(TOOL_CONF)
    if not isinstance(conf, dict):
        return "missing lti-tool-configuration"
    domain, target = conf.get("domain", ""), conf.get("target_link_uri", "")
    if not domain or urlsplit(target).netloc != domain:
        return "domain does not match target_link_uri"
    if any(urlsplit(uri).netloc != domain for uri in payload["redirect_uris"]):
        return "redirect uri outside the domain"
    return None


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def moodle() -> Iterator[FakeMoodle]:
    """A fake Moodle serving its registration endpoints on 127.0.0.1 in a thread."""
    platform = FakeMoodle()
    server = make_server("127.0.0.1", 0, platform.app(), threaded=True)
    platform.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield platform
    server.shutdown()
    thread.join(5)


@pytest.fixture(autouse=True)
def _moodle_allow_listed(request: pytest.FixtureRequest, moodle: FakeMoodle) -> None:
    """The fake Moodle runs on 127.0.0.1, which only an allow-listed issuer may use (like a campus Moodle on 10.x)."""
    if "app" in request.fixturenames:
        application: Flask = request.getfixturevalue("app")
        config = application.extensions["coursebots.config"]
        application.extensions["coursebots.config"] = replace(config, registration_allowed_issuers=(moodle.base,))


def register_url(moodle: FakeMoodle, token: str | None = None) -> str:
    """The URL Moodle opens in its iframe."""
    query = {"openid_configuration": f"{moodle.base}/mod/lti/openid-configuration.php",
             "registration_token": moodle.token if token is None else token}
    return "/lti/register?" + urlencode(query)


def frame_ancestors(response: Any) -> list[str]:
    """The frame-ancestors sources of a response's CSP."""
    csp = response.headers["Content-Security-Policy"]
    directive = next(part for part in csp.split(";") if part.strip().startswith("frame-ancestors"))
    return directive.split()[1:]


def counts(app: Flask) -> tuple[int, int]:
    """(platforms, deployments) stored."""
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Platform)) or 0,
                db.session.scalar(select(func.count()).select_from(Deployment)) or 0)


def test_registration_like_moodle(app: Flask, client: FlaskClient, moodle: FakeMoodle) -> None:
    response = client.get(register_url(moodle))
    assert response.status_code == 200, response.text

    registration = moodle.requests[-1]
    assert registration["auth"] == "Bearer moodle-registration-token"
    payload = registration["payload"]
    assert payload["client_name"] == "CourseBots"
    assert payload["initiate_login_uri"] == "http://localhost:5000/lti/login"
    assert payload["redirect_uris"] == ["http://localhost:5000/lti/launch"]
    assert payload["jwks_uri"] == "http://localhost:5000/lti/jwks"
    assert payload["token_endpoint_auth_method"] == "private_key_jwt"
    assert payload["response_types"] == ["id_token"]
    conf = payload[TOOL_CONF]
    assert conf["domain"] == "localhost:5000"
    assert conf["target_link_uri"] == "http://localhost:5000/lti/launch"
    assert set(conf["claims"]) == {"iss", "sub", "name", "given_name", "family_name", "email", "locale"}
    messages = {m["type"]: m for m in conf["messages"]}
    assert messages["LtiDeepLinkingRequest"]["target_link_uri"] == "http://localhost:5000/lti/launch"
    assert messages["LtiDeepLinkingRequest"]["label"] == "CourseBots"
    assert "LtiResourceLinkRequest" in messages

    with app.app_context():
        platform = db.session.scalars(select(Platform)).one()
        assert platform.issuer == moodle.base
        assert platform.client_id == moodle.client_id
        assert platform.auth_login_url == f"{moodle.base}/mod/lti/auth.php"
        assert platform.auth_token_url == f"{moodle.base}/mod/lti/token.php"
        assert platform.key_set_url == f"{moodle.base}/mod/lti/certs.php"
        assert platform.registered_via == "dynamic"
        stored = platform.registration_data or {}
        assert stored["client_id"] == moodle.client_id
        assert "registration_access_token" not in stored
        assert [d.deployment_id for d in platform.deployments] == ["7"]


def test_complete_page_closes_the_frame_and_is_frameable_by_the_platform(
        client: FlaskClient, moodle: FakeMoodle) -> None:
    response = client.get(register_url(moodle))
    assert response.status_code == 200
    assert frame_ancestors(response) == ["'self'", moodle.base]
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)  # type: ignore
    script = re.search(r'<script nonce="([^"]+)">(.*?)</script>', response.text, re.S)
    assert script is not None and script.group(1) == nonce
    assert "(window.opener || window.parent).postMessage({subject: 'org.imsglobal.lti.close'}, '*')" \
        in script.group(2)


def test_new_platform_is_a_frame_ancestor_of_every_page_at_once(client: FlaskClient, moodle: FakeMoodle) -> None:
    assert moodle.base not in frame_ancestors(client.get("/no-such-page"))  # caches "no platforms"
    client.get(register_url(moodle))
    assert moodle.base in frame_ancestors(client.get("/no-such-page"))


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_reregistration_updates_instead_of_duplicating(app: Flask, client: FlaskClient, moodle: FakeMoodle) -> None:
    assert client.get(register_url(moodle)).status_code == 200
    assert client.get(register_url(moodle)).status_code == 200  # Moodle: "update existing tool"
    assert counts(app) == (1, 1)

    moodle.deployment_id = "8"  # same registration, a second deployment
    assert client.get(register_url(moodle)).status_code == 200
    assert counts(app) == (1, 2)

    moodle.client_id = "another-client"  # Moodle: "register as a new tool"
    assert client.get(register_url(moodle)).status_code == 200
    assert counts(app) == (2, 3)


def _migrated(make_app: Callable[..., Flask], **overrides: object) -> Flask:
    application: Flask = make_app(**overrides)
    with application.app_context():
        upgrade()
    return application


def test_allow_list_rejects_other_issuers_without_contacting_them(make_app: Callable[..., Flask],
                                                                  moodle: FakeMoodle) -> None:
    application = _migrated(make_app, registration_allowed_issuers=("https://moodle.example.edu",))
    response = application.test_client().get(register_url(moodle))
    assert response.status_code == 403
    assert "registration_issuer_not_allowed" in response.text
    assert moodle.requests == []
    assert moodle.base in frame_ancestors(response)  # the error shows inside the platform's frame
    assert counts(application) == (0, 0)


def test_allow_list_admits_a_listed_issuer(make_app: Callable[..., Flask], moodle: FakeMoodle) -> None:
    application = _migrated(make_app, registration_allowed_issuers=("https://moodle.example.edu", moodle.base))
    assert application.test_client().get(register_url(moodle)).status_code == 200
    assert counts(application) == (1, 1)


def test_unreachable_configuration_shows_a_frameable_error(make_app: Callable[..., Flask]) -> None:
    origin = f"http://127.0.0.1:{free_port()}"
    application = _migrated(make_app, registration_allowed_issuers=(origin,))
    query = urlencode({"openid_configuration": f"{origin}/mod/lti/openid-configuration.php",
                       "registration_token": "t"})
    response = application.test_client().get(f"/lti/register?{query}")
    assert response.status_code == 502
    assert "registration_configuration_unreachable" in response.text
    assert origin in frame_ancestors(response)
    assert counts(application) == (0, 0)


def test_slow_configuration_times_out(app: Flask, client: FlaskClient, moodle: FakeMoodle,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safe_fetch, "READ_SECONDS", 0.3)
    moodle.delay_seconds = 1.5  # a read timeout that did not work would register (200)
    response = client.get(register_url(moodle))
    assert response.status_code == 502
    assert "registration_configuration_unreachable" in response.text
    assert counts(app) == (0, 0)


def test_issuer_must_own_the_configuration_url(app: Flask, client: FlaskClient, moodle: FakeMoodle) -> None:
    moodle.issuer = "https://other-moodle.example.edu"
    response = client.get(register_url(moodle))
    assert response.status_code == 502
    assert "registration_configuration_invalid" in response.text
    assert counts(app) == (0, 0)


def test_refused_token_is_reported(app: Flask, client: FlaskClient, moodle: FakeMoodle) -> None:
    response = client.get(register_url(moodle, token="expired-token"))
    assert response.status_code == 502
    assert "registration_rejected" in response.text
    assert counts(app) == (0, 0)


def test_answer_without_deployment_is_reported(app: Flask, client: FlaskClient, moodle: FakeMoodle) -> None:
    moodle.omit_deployment = True
    response = client.get(register_url(moodle))
    assert response.status_code == 502
    assert "registration_invalid_response" in response.text
    assert counts(app) == (0, 0)


def test_missing_parameters(client: FlaskClient) -> None:
    response = client.get("/lti/register")
    assert response.status_code == 400
    assert "registration_missing_parameters" in response.text


def test_every_registration_reason_is_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "LTI.md").read_text(encoding="utf-8")
    section = text.split("## Dynamic Registration", 1)[1]
    codes = [code for code in REASONS if code.startswith("registration_")]
    assert len(codes) == 7
    assert [code for code in codes if f"| `{code}` |" not in section] == []
