"""Anonymous login initiation costs nothing: no rows before the platform is known and the request well-formed,
a per-address rate limit (429), and login state that expires."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import func, select

from coursebots_tests_lti_platform import FakePlatform  # loaded by conftest.py
from lti_tool import launch
from lti_tool.config import Config, ConfigError
from lti_tool.extensions import db, utcnow
from lti_tool.models import LaunchState
from lti_tool.ratelimit import Rate, client_key, parse_rate

BOTH = pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
                               indirect=True)
FROZEN = 1_700_000_010.0  # inside one rate window, so no window boundary falls inside a test


def state_rows(app: Flask) -> int:
    """Rows in the launch-state table."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(LaunchState)) or 0


def freeze_rate_clock(app: Flask) -> None:
    """Pin the limiter's clock (a test must not straddle two windows)."""
    limiter = app.extensions["coursebots.rate_limiter"]
    limiter.clock = lambda: FROZEN


@pytest.fixture
def limited_app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    """An app with a small limit, behind one proxy (X-Forwarded-For names the client)."""
    application = make_app(lti_rate_limit="5/minute", proxy_hops=1)
    with application.app_context():
        upgrade()
    freeze_rate_clock(application)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@BOTH
def test_300_anonymous_logins_with_unknown_issuers_write_nothing(
        app: Flask, client: FlaskClient, registered_platform: FakePlatform) -> None:
    app.extensions["coursebots.rate_limiter"] = None  # every request reaches the checks
    before = state_rows(app)
    for i in range(300):
        params = registered_platform.login_params(iss=f"https://moodle-{uuid.uuid4().hex[:8]}.example",
                                                  client_id=f"c{i}")
        if i % 2:
            params["lti1p3_new_window"] = "1"
        response = client.post("/lti/login", data=params)
        assert response.status_code == 403 and b"unknown_platform" in response.data
    assert state_rows(app) == before == 0


MALFORMED = {
    "no target_link_uri": {"target_link_uri": ""},
    "target_link_uri of another tool": {"target_link_uri": "https://evil.example/lti/launch"},
    "target_link_uri on a look-alike host": {"target_link_uri": "http://localhost:5000.evil.example/x"},
    "no login_hint": {"login_hint": ""},
    "overlong lti_message_hint": {"lti_message_hint": "x" * 5000},
    "overlong login_hint": {"login_hint": "1" * 2000},
    "overlong target_link_uri": {"target_link_uri": "http://localhost:5000/lti/launch?" + "a" * 3000},
}


@BOTH
@pytest.mark.parametrize("defect", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_login_for_a_known_platform_writes_nothing(
        app: Flask, client: FlaskClient, registered_platform: FakePlatform, defect: dict[str, str]) -> None:
    params = {**registered_platform.login_params(**defect), "lti1p3_new_window": "1"}
    response = client.post("/lti/login", data=params)
    assert response.status_code == 400 and b"<code>login_invalid</code>" in response.data
    assert state_rows(app) == 0


def test_long_but_sane_parameters_still_log_in(app: Flask, client: FlaskClient,
                                               registered_platform: FakePlatform) -> None:
    preflight = registered_platform.login(client, lti_message_hint="m" * 4000, login_hint="u" * 1000)
    assert preflight.params["lti_message_hint"] == "m" * 4000


def test_one_address_beyond_the_limit_gets_429_and_stores_no_more(limited_app: Flask, platform: FakePlatform) -> None:
    platform.register(limited_app)
    client = limited_app.test_client()
    params = {**platform.login_params(), "lti1p3_new_window": "1"}
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    answers = [client.post("/lti/login", data=params, headers=attacker).status_code for _ in range(300)]
    assert answers[:5] == [302] * 5
    assert set(answers[5:]) == {429}
    assert state_rows(limited_app) == 2 * 5  # state + issued nonce of the five admitted logins

    refused = client.post("/lti/login", data=params, headers=attacker)
    assert refused.status_code == 429
    assert refused.mimetype == "text/html" and b"<code>rate_limited</code>" in refused.data
    assert "frame-ancestors 'self' *;" in refused.headers["Content-Security-Policy"]  # readable inside Moodle
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    # Another address (same public issuer and client id) is not affected: the key is the client address.
    assert client.post("/lti/login", data=params, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 302
    # The relaunch path shares the budget.
    assert client.post("/lti/relaunch", data={"state": "x"}, headers=attacker).status_code == 429


def test_the_next_window_admits_the_address_again(limited_app: Flask, platform: FakePlatform) -> None:
    platform.register(limited_app)
    client = limited_app.test_client()
    params = platform.login_params()
    for _ in range(5):
        assert client.post("/lti/login", data=params).status_code == 200
    assert client.post("/lti/login", data=params).status_code == 429
    limited_app.extensions["coursebots.rate_limiter"].clock = lambda: FROZEN + 60
    assert client.post("/lti/login", data=params).status_code == 200


def test_registration_is_rate_limited_too(limited_app: Flask) -> None:
    client = limited_app.test_client()
    answers = [client.get("/lti/register").status_code for _ in range(7)]
    assert answers == [400] * 5 + [429] * 2


def test_default_limit_is_on_and_unknown_syntax_is_refused_at_start() -> None:
    assert parse_rate(Config().lti_rate_limit) == Rate(60, 60)
    assert parse_rate("30 per minute") == Rate(30, 60) and parse_rate("") is None
    with pytest.raises(ConfigError, match="COURSEBOTS_LTI_RATE_LIMIT"):
        Config.from_env({"COURSEBOTS_LTI_RATE_LIMIT": "lots"}, instance_path="/nonexistent")


def test_ipv6_clients_are_counted_per_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.9") == client_key("203.0.113.9")


def test_counters_in_redis_are_shared_by_workers(make_app: Callable[..., Flask], redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    workers = [make_app(lti_rate_limit="3/minute", redis_url=redis_url) for _ in range(2)]
    for worker in workers:
        freeze_rate_clock(worker)
    answers = [workers[i % 2].test_client().get("/lti/register").status_code for i in range(5)]
    assert answers == [400, 400, 400, 429, 429]
    redis.Redis.from_url(redis_url).flushdb()


@BOTH
def test_login_state_expires_and_is_deleted(app: Flask, client: FlaskClient, registered_platform: FakePlatform,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    first = registered_platform.login(client)
    with app.app_context():
        rows = db.session.scalars(select(LaunchState)).all()
        assert len(rows) == 2
        assert all(timedelta(0) < row.expires_at - utcnow() <= timedelta(seconds=600) for row in rows)

    later = utcnow() + timedelta(seconds=601)
    monkeypatch.setattr(launch, "utcnow", lambda: later)
    # A launch with the expired state is refused with its reason code.
    token = registered_platform.id_token(first)
    response = registered_platform.post_launch(client, token, first.state)
    assert response.status_code == 400 and b"<code>state_unknown</code>" in response.data
    # The next login deletes every expired row: only its own two remain.
    second = registered_platform.login(client)
    with app.app_context():
        keys = set(db.session.scalars(select(LaunchState.key)))
    assert len(keys) == 2 and any(second.state in key for key in keys) and not any(first.state in k for k in keys)
