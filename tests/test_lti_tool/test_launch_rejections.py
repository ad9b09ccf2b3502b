"""Every rejection is a pair: a token with exactly one defect is refused with its reason code, and the same
token without the defect launches."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from markupsafe import escape
from prometheus_client import REGISTRY
from werkzeug.test import TestResponse

from coursebots_tests_lti_platform import FakePlatform, PlatformKey, Preflight  # loaded by conftest.py
from lti_tool.context import LaunchContext
from lti_tool.reasons import REASONS
from lti_tool import create_app
from lti_tool.extensions import db
from lti_tool.reasons import MESSAGES_DE

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@pytest.fixture(autouse=True)
def _recording_handler(app: Flask) -> None:
    def handler(ctx: LaunchContext) -> Response:
        return Response("LAUNCHED", mimetype="text/html")

    app.extensions["coursebots.launch_handler"] = handler


def rejections(code: str) -> float:
    """The Prometheus counter of rejections with this reason."""
    return REGISTRY.get_sample_value("coursebots_launch_rejections_total", {"reason": code}) or 0.0


def assert_rejected(response: TestResponse, code: str, frame_origin: str = "*") -> None:
    """A clear, frameable error page naming the reason code."""
    page = response.get_data(as_text=True)
    assert f"<code>{code}</code>" in page, page[:1200]
    assert response.status_code == REASONS[code].status
    assert str(escape(REASONS[code].message.split(".")[0])) in page
    csp = response.headers["Content-Security-Policy"]
    assert (f"frame-ancestors 'self' {frame_origin};" in csp), csp


def assert_launched(response: TestResponse) -> None:
    """The launch reached the product's handler."""
    assert response.status_code == 200 and response.data == b"LAUNCHED", response.get_data(as_text=True)[:1200]


@dataclass
class Defect:
    """One defect: how to break a valid launch (claims, signing options, form) and the code it must get."""

    code: str
    claims: Callable[[dict[str, Any], FakePlatform], None] = lambda c, p: None
    sign: Callable[[FakePlatform], dict[str, Any]] = lambda p: {}
    state: Callable[[Preflight], str | None] = lambda pf: pf.state


def _set(**changes: Any) -> Callable[[dict[str, Any], FakePlatform], None]:
    def apply(claims: dict[str, Any], platform: FakePlatform) -> None:
        now = int(time.time())
        for key, value in changes.items():
            claims[key.replace("__", "/")] = value(now) if callable(value) else value
    return apply


def _drop(*keys: str) -> Callable[[dict[str, Any], FakePlatform], None]:
    def apply(claims: dict[str, Any], platform: FakePlatform) -> None:
        for key in keys:
            claims.pop(key)
    return apply


DEFECTS = {
    "bad signature": Defect("bad_signature", sign=lambda p: {"key": PlatformKey.generate(), "kid": p.key.kid}),
    "alg none": Defect("alg_none", sign=lambda p: {"alg": "none"}),
    "HS256 signed with the platform's public key": Defect(
        "alg_symmetric", sign=lambda p: {"alg": "HS256", "secret": p.key.public_pem}),
    "RS512": Defect("alg_unsupported", sign=lambda p: {"alg": "RS512"}),
    "unknown kid": Defect("unknown_kid", sign=lambda p: {"key": PlatformKey.generate()}),
    "no kid": Defect("kid_missing", sign=lambda p: {"kid": ""}),
    "expired": Defect("token_expired", claims=_set(iat=lambda now: now - 900, exp=lambda now: now - 600)),
    "iat in the future": Defect("iat_in_future", claims=_set(iat=lambda now: now + 600, exp=lambda now: now + 900)),
    "no exp": Defect("claims_missing", claims=_drop("exp")),
    "wrong aud": Defect("wrong_audience", claims=_set(aud="someone-else")),
    "wrong azp": Defect("wrong_azp", claims=_set(azp="someone-else")),
    "aud list without azp": Defect("wrong_azp", claims=lambda c, p: (c.update(aud=[p.client_id, "x"]),
                                                                     c.pop("azp"))),
    "wrong iss": Defect("wrong_issuer", claims=_set(iss="https://evil.example")),
    "unknown deployment": Defect("unknown_deployment", claims=_set(**{CLAIM + "deployment_id": "999"})),
    "missing roles": Defect("claims_missing", claims=_drop(CLAIM + "roles")),
    "missing resource link": Defect("claims_missing", claims=_drop(CLAIM + "resource_link")),
    "missing context": Defect("claims_missing", claims=_drop(CLAIM + "context")),
    "missing deployment id": Defect("claims_missing", claims=_drop(CLAIM + "deployment_id")),
    "wrong message type": Defect("wrong_message_type",
                                 claims=_set(**{CLAIM + "message_type": "LtiSubmissionReviewRequest"})),
    "wrong version": Defect("wrong_version", claims=_set(**{CLAIM + "version": "1.1"})),
    "nonce not issued for this state": Defect("nonce_mismatch", claims=_set(nonce="nonce-from-elsewhere")),
    "missing state": Defect("state_missing", state=lambda pf: None),
    "unknown state": Defect("state_unknown", state=lambda pf: "state-never-issued"),
}


@pytest.mark.parametrize("name", list(DEFECTS))
def test_one_defect_is_rejected_and_the_same_token_without_it_launches(
        name: str, client: FlaskClient, registered_platform: FakePlatform) -> None:
    defect, platform = DEFECTS[name], registered_platform
    preflight = platform.login(client)
    good = platform.claims(preflight)
    bad = dict(good)
    defect.claims(bad, platform)
    before = rejections(defect.code)
    response = platform.post_launch(client, platform.sign(bad, **defect.sign(platform)), defect.state(preflight))
    assert_rejected(response, defect.code, platform.issuer)
    assert rejections(defect.code) == before + 1
    assert_launched(platform.post_launch(client, platform.sign(good), preflight.state))


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_replayed_nonce(client: FlaskClient, registered_platform: FakePlatform) -> None:
    preflight = registered_platform.login(client)
    token = registered_platform.id_token(preflight)
    assert_launched(registered_platform.post_launch(client, token, preflight.state))
    assert_rejected(registered_platform.post_launch(client, token, preflight.state), "nonce_replayed",
                    registered_platform.issuer)


def test_state_of_another_browser_is_refused(app: Flask, client: FlaskClient,
                                             registered_platform: FakePlatform) -> None:
    """Login CSRF: the attacker's own launch, posted into the victim's browser, is refused."""
    registered_platform.login(client)  # the victim's browser holds a state cookie of its own
    attacker = app.test_client()
    preflight = registered_platform.login(attacker)
    token = registered_platform.id_token(preflight)
    assert_rejected(registered_platform.post_launch(client, token, preflight.state), "state_mismatch",
                    registered_platform.issuer)
    assert_launched(registered_platform.post_launch(attacker, token, preflight.state))


def test_platform_jwks_unreachable(client: FlaskClient, registered_platform: FakePlatform) -> None:
    preflight = registered_platform.login(client)
    token = registered_platform.id_token(preflight)
    registered_platform.jwks_mode = "down"
    assert_rejected(registered_platform.post_launch(client, token, preflight.state), "jwks_unreachable",
                    registered_platform.issuer)
    registered_platform.jwks_mode = "ok"
    assert_launched(registered_platform.post_launch(client, token, preflight.state))


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_platform_key_rotation_refetches_jwks_once(client: FlaskClient, registered_platform: FakePlatform) -> None:
    assert_launched(registered_platform.launch(client))
    assert registered_platform.jwks_requests == 1
    assert_launched(registered_platform.launch(client))
    assert registered_platform.jwks_requests == 1  # cached
    registered_platform.rotate()  # new kid signs; the old key stays published
    assert_launched(registered_platform.launch(client))
    assert registered_platform.jwks_requests == 2  # unknown kid: refetched once
    preflight = registered_platform.login(client)
    old_key_token = registered_platform.sign(registered_platform.claims(preflight), key=registered_platform.keys[0])
    assert_launched(registered_platform.post_launch(client, old_key_token, preflight.state))
    assert registered_platform.jwks_requests == 2


def test_missing_id_token_and_garbage(client: FlaskClient, registered_platform: FakePlatform) -> None:
    preflight = registered_platform.login(client)
    assert_rejected(registered_platform.post_launch(client, None, preflight.state), "id_token_missing")
    assert_rejected(registered_platform.post_launch(client, "not.a-jwt", preflight.state), "token_malformed")
    assert_launched(registered_platform.post_launch(client, registered_platform.id_token(preflight),
                                                    preflight.state))


def test_removed_platform_is_refused(app: Flask, client: FlaskClient, registered_platform: FakePlatform) -> None:
    preflight = registered_platform.login(client)
    token = registered_platform.id_token(preflight)
    result = app.test_cli_runner().invoke(args=["lti", "platform-remove", "--issuer", registered_platform.issuer])
    assert result.exit_code == 0, result.output
    assert_rejected(registered_platform.post_launch(client, token, preflight.state), "unknown_issuer")


def test_login_rejections(client: FlaskClient, platform: FakePlatform, registered_platform: FakePlatform) -> None:
    params = registered_platform.login_params()
    assert_rejected(client.post("/lti/login", data={**params, "login_hint": ""}), "login_invalid",
                    registered_platform.issuer)
    assert_rejected(client.post("/lti/login", data={**params, "client_id": "unknown"}), "unknown_platform",
                    registered_platform.issuer)
    assert_rejected(client.post("/lti/login", data={**params, "iss": "https://unknown.example"}),
                    "unknown_platform")
    assert_rejected(client.post("/lti/login", data={**params, "lti_deployment_id": "999"}), "unknown_deployment",
                    registered_platform.issuer)
    assert client.post("/lti/login", data=params).status_code == 200


def test_rejections_log_no_personal_data(client: FlaskClient, registered_platform: FakePlatform,
                                         caplog: pytest.LogCaptureFixture) -> None:
    preflight = registered_platform.login(client)
    claims = registered_platform.claims(preflight)
    claims[CLAIM + "deployment_id"] = "999"
    registered_platform.post_launch(client, registered_platform.sign(claims), preflight.state)
    assert_launched(registered_platform.post_launch(client, registered_platform.id_token(preflight),
                                                    preflight.state))
    assert "reason=unknown_deployment" in caplog.text
    for personal in ("Ada", "Lovelace", "ada@example.edu", "login_hint"):
        assert personal not in caplog.text


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def _dispose(application: Flask) -> None:

    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def test_nonce_used_once_across_worker_processes(app: Flask, client: FlaskClient, registered_platform: FakePlatform,
                                                 request: pytest.FixtureRequest) -> None:
    """Two workers (separate apps on one database) receive the same launch at the same moment: one accepts it."""
    from concurrent.futures import ThreadPoolExecutor

    other_worker = create_app(app.extensions["coursebots.config"])
    other_worker.extensions["coursebots.launch_handler"] = app.extensions["coursebots.launch_handler"]
    request.addfinalizer(lambda: _dispose(other_worker))  # its pool would leak a database connection
    preflight = registered_platform.login(client)
    token = registered_platform.id_token(preflight)
    name = f"coursebots-lti-{preflight.state}"
    cookie = client.get_cookie(name, path="/lti/")
    assert cookie is not None
    second = other_worker.test_client()
    second.set_cookie(name, cookie.value, path="/lti/")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda c: registered_platform.post_launch(c, token, preflight.state),
                                [client, second]))
    launched = [r for r in results if r.data == b"LAUNCHED"]
    refused = [r for r in results if b"<code>nonce_replayed</code>" in r.data or b"<code>state_unknown</code>"
               in r.data]
    assert (len(launched), len(refused)) == (1, 1), [r.data[:300] for r in results]


def test_error_page_speaks_the_browsers_language(client: FlaskClient, registered_platform: FakePlatform) -> None:

    preflight = registered_platform.login(client)
    german = client.post("/lti/launch", data={"state": preflight.state},
                         headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    page = german.get_data(as_text=True)
    assert german.status_code == REASONS["id_token_missing"].status
    assert '<html lang="de">' in page and "CourseBots konnte nicht geöffnet werden" in page
    assert str(escape(MESSAGES_DE["id_token_missing"])) in page and "<code>id_token_missing</code>" in page
    english = client.post("/lti/launch", data={"state": preflight.state}, headers={"Accept-Language": "en-GB"})
    assert "CourseBots could not open" in english.get_data(as_text=True)
