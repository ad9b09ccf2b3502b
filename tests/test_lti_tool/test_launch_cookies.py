"""State across the frame: a launch whose state cookie the browser refused continues in a new window."""
from __future__ import annotations

import pytest
from flask import Flask, Response

from coursebots_tests_lti_platform import INSTRUCTOR, FakePlatform  # loaded by conftest.py
from lti_tool.extensions import db
from lti_tool.models import LaunchState


@pytest.fixture(autouse=True)
def _handler(app: Flask) -> None:
    app.extensions["coursebots.launch_handler"] = lambda ctx: Response(f"LAUNCHED {ctx.context_id}")


def test_cookie_refused_in_frame_continues_in_a_new_window(app: Flask, registered_platform: FakePlatform) -> None:
    frame = app.test_client(use_cookies=False)  # a browser refusing the tool's cookies inside Moodle's frame
    preflight = registered_platform.login(frame)
    token = registered_platform.id_token(preflight, INSTRUCTOR)
    page = registered_platform.post_launch(frame, token, preflight.state)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "reason code" not in text.lower()  # never an error page
    assert 'target="_blank"' in text and 'action="/lti/relaunch"' in text
    assert f'name="state" value="{preflight.state}"' in text
    assert f"frame-ancestors 'self' {registered_platform.issuer}" in page.headers["Content-Security-Policy"]

    window = app.test_client()  # the new top-level window: first-party cookies work
    restarted = registered_platform.preflight_from(window.post("/lti/relaunch", data={"state": preflight.state}))
    assert restarted.state != preflight.state and restarted.params["login_hint"] == "2"
    launched = registered_platform.post_launch(window, registered_platform.id_token(restarted, INSTRUCTOR),
                                               restarted.state)
    assert launched.get_data(as_text=True) == "LAUNCHED course-42"
    # The relaunch is single-use, and the first id_token can no longer be used.
    assert b"state_unknown" in window.post("/lti/relaunch", data={"state": preflight.state}).data
    assert b"state_unknown" in registered_platform.post_launch(frame, token, preflight.state).data


def test_relaunch_restores_the_original_login_parameters(app: Flask, registered_platform: FakePlatform) -> None:
    frame = app.test_client(use_cookies=False)
    params = registered_platform.login_params(lti_message_hint='{"cmid": 99}')
    frame.post("/lti/login", data=params)
    first = registered_platform.preflight_from(frame.post("/lti/login", data={**params, "lti1p3_new_window": "1"}))
    registered_platform.post_launch(frame, registered_platform.id_token(first), first.state)
    window = app.test_client()
    again = registered_platform.preflight_from(window.post("/lti/relaunch", data={"state": first.state}))
    assert again.params["lti_message_hint"] == '{"cmid": 99}'
    assert again.params["redirect_uri"] == "http://localhost:5000/lti/launch"


def test_login_state_stored_without_login_hint_in_clear(app: Flask, registered_platform: FakePlatform) -> None:
    client = app.test_client()
    registered_platform.login(client, login_hint="user-31337")
    with app.app_context():
        stored = " ".join(repr(row.value) for row in db.session.query(LaunchState).all())
    assert "user-31337" not in stored and "cmid" not in stored


def test_launch_without_cookie_and_wrong_nonce_is_refused(app: Flask, registered_platform: FakePlatform) -> None:
    frame = app.test_client(use_cookies=False)
    preflight = registered_platform.login(frame)
    claims = registered_platform.claims(preflight)
    claims["nonce"] = "other"
    response = registered_platform.post_launch(frame, registered_platform.sign(claims), preflight.state)
    assert b"<code>nonce_mismatch</code>" in response.data
