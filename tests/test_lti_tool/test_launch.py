"""Launches driven by the independent platform implementation lti1p3platform against the real app."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient

from coursebots_tests_lti_platform import INSTRUCTOR, LEARNER, FakePlatform  # loaded by conftest.py
from lti_tool.context import LaunchContext, Role
from lti_tool.extensions import db, utcnow
from lti_tool.models import Platform


@pytest.fixture
def launches(app: Flask) -> list[LaunchContext]:
    """Replace the product's launch handler by a recorder: the contract is the LaunchContext it receives."""
    seen: list[LaunchContext] = []

    def handler(ctx: LaunchContext) -> Response:
        seen.append(ctx)
        return Response(f"handled {sorted(r.value for r in ctx.roles)}", mimetype="text/html")

    app.extensions["coursebots.launch_handler"] = handler
    return seen


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_student_launch(app: Flask, client: FlaskClient, registered_platform: FakePlatform,
                        launches: list[LaunchContext]) -> None:
    response = registered_platform.launch(client, roles=LEARNER)
    assert response.status_code == 200, response.data
    [ctx] = launches
    assert ctx.roles == frozenset({Role.LEARNER}) and not ctx.is_teacher
    assert (ctx.issuer, ctx.client_id, ctx.deployment_id) == (
        registered_platform.issuer, registered_platform.client_id, "1")
    assert (ctx.context_id, ctx.context_title, ctx.resource_link_id) == ("course-42", "Physics 101", "rl-7")
    assert ctx.message_type == "LtiResourceLinkRequest" and ctx.locale == "de" and ctx.user_sub == "2"
    assert ctx.names == ("Ada", "Lovelace", "Ada Lovelace")
    assert ctx.platform_id > 0


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_teacher_launch(client: FlaskClient, registered_platform: FakePlatform,
                        launches: list[LaunchContext]) -> None:
    response = registered_platform.launch(client, roles=INSTRUCTOR)
    assert response.status_code == 200, response.data
    [ctx] = launches
    assert Role.INSTRUCTOR in ctx.roles and ctx.is_teacher


def test_launch_reaches_the_product_page_framed_by_the_platform(
        client: FlaskClient, registered_platform: FakePlatform) -> None:
    response = registered_platform.launch(client, roles=LEARNER)
    assert response.status_code == 200
    assert f"frame-ancestors 'self' {registered_platform.issuer}" in response.headers["Content-Security-Policy"]


def test_fallback_page_without_product_handler(app: Flask, client: FlaskClient,
                                               registered_platform: FakePlatform) -> None:
    app.extensions.pop("coursebots.launch_handler", None)
    response = registered_platform.launch(client, roles=INSTRUCTOR)
    assert b"Launched as role instructor" in response.data


def test_login_by_get_and_exact_redirect_uri(client: FlaskClient, registered_platform: FakePlatform) -> None:
    preflight = registered_platform.login(client, method="GET")
    params: dict[str, Any] = preflight.params
    assert params["redirect_uri"] == "http://localhost:5000/lti/launch"  # from COURSEBOTS_BASE_URL, not the request
    assert params["client_id"] == registered_platform.client_id
    assert (params["response_type"], params["response_mode"], params["scope"], params["prompt"]) == (
        "id_token", "form_post", "openid", "none")
    assert params["login_hint"] == "2" and "cmid" in params["lti_message_hint"]


def test_state_cookie_attributes(client: FlaskClient, registered_platform: FakePlatform) -> None:
    params = registered_platform.login_params()
    response = client.post("/lti/login", data={**params, "lti1p3_new_window": "1"})
    [cookie] = response.headers.getlist("Set-Cookie")
    name = cookie.split("=", 1)[0]
    assert name.startswith("coursebots-lti-state-") and "MoodleSession" not in cookie
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/lti/", "Max-Age=600"):
        assert attribute in cookie


def test_cookie_check_page_keeps_login_hint_out_of_urls(client: FlaskClient,
                                                        registered_platform: FakePlatform) -> None:
    response = client.post("/lti/login", data=registered_platform.login_params())
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'method="post"' in page and 'formtarget="_blank"' in page
    assert 'name="login_hint" value="2"' in page
    nonce = response.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page
    assert f"frame-ancestors 'self' {registered_platform.issuer}" in response.headers["Content-Security-Policy"]


def test_anonymous_launch_has_no_sub(client: FlaskClient, registered_platform: FakePlatform,
                                     launches: list[LaunchContext]) -> None:
    preflight = registered_platform.login(client)
    claims = registered_platform.claims(preflight)
    for key in ("sub", "name", "given_name", "family_name", "email"):
        claims.pop(key, None)
    response = registered_platform.post_launch(client, registered_platform.sign(claims), preflight.state)
    assert response.status_code == 200, response.data
    assert launches[0].user_sub is None and launches[0].names == ()


def test_context_is_transient(registered_platform: FakePlatform, client: FlaskClient, app: Flask) -> None:
    """Nothing personal from a launch reaches the database (the product's tables included)."""
    from sqlalchemy import text

    response = registered_platform.launch(client, INSTRUCTOR)
    assert response.status_code == 200
    with app.app_context():
        dump = []
        for table in db.metadata.sorted_tables:
            dump += [repr(tuple(row)) for row in db.session.execute(text(f'SELECT * FROM "{table.name}"'))]
    blob = "\n".join(dump)
    for personal in ("Ada", "Lovelace", "ada@example.edu"):
        assert personal not in blob


def test_platform_jwks_cache_expires(app: Flask, client: FlaskClient, registered_platform: FakePlatform,
                                     launches: list[LaunchContext]) -> None:
    from datetime import timedelta

    registered_platform.launch(client)
    registered_platform.launch(client)
    assert (len(launches), registered_platform.jwks_requests) == (2, 1)
    max_age = app.extensions["coursebots.config"].platform_jwks_cache_seconds
    with app.app_context():
        for row in db.session.query(Platform).all():
            row.key_set_fetched_at = utcnow() - timedelta(seconds=max_age + 1)
        db.session.commit()
    registered_platform.launch(client)
    assert (len(launches), registered_platform.jwks_requests) == (3, 2)
