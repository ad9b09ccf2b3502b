"""Real launches in headless Chromium: the fake platform on 127.0.0.1, the tool on localhost, as under Moodle."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Platform

pytestmark = pytest.mark.browser

ROLES = ("teacher", "student")
NEW_WINDOW = re.compile("new window", re.I)


def _set_cookies(requests: list[Any]) -> list[str]:
    """Every Set-Cookie header the tool sent in these requests' responses."""
    headers = []
    for req in requests:
        response = req.response()
        if response is not None:
            headers += [h["value"] for h in response.headers_array() if h["name"].lower() == "set-cookie"]
    return headers


@pytest.mark.parametrize("framed", [True, False], ids=["framed", "top-level"])
@pytest.mark.parametrize("role", ROLES)
def test_launch_lands_on_the_roles_page(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                        tool_requests: Callable[[Any], list[Any]], platform_server: Any,
                                        tool_server: Any, role: str, framed: bool) -> None:
    page = launch(role, framed=framed)
    frame = tool_frame(page)
    expect(frame.locator(f'main[data-page="{role}"]')).to_be_visible()
    other = "student" if role == "teacher" else "teacher"
    assert frame.locator(f'main[data-page="{other}"]').count() == 0
    assert frame.url.startswith(tool_server.base_url + "/")
    assert page.url.startswith((platform_server.base_url if framed else tool_server.base_url) + "/")

    state_cookies = [c for c in _set_cookies(tool_requests(page)) if "=;" not in c.split(";")[0] + ";"]
    assert state_cookies, "the login set no state cookie"
    for cookie in state_cookies:  # what a framed, cross-site launch needs, on http://localhost too
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"secure", "partitioned", "samesite=none"} <= attributes, cookie
    if framed:  # whatever the tool still keeps in the frame lives in the platform's partition (a site: no port)
        kept = page.context.cookies(tool_server.base_url)
        assert all(c.get("partitionKey") == "http://127.0.0.1" for c in kept), kept


@pytest.mark.parametrize("role", ROLES)
def test_cookies_refused_in_the_frame_continue_in_a_new_window(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], tool_server: Any, role: str) -> None:
    page = launch(role, framed=True, block_frame_cookies=True)
    frame = tool_frame(page)
    assert page.context.cookies(tool_server.base_url) == []  # the simulation really refuses cookies in the frame
    button = frame.get_by_role("button", name=NEW_WINDOW)
    expect(button).to_be_visible()
    assert frame.locator("main[data-page]").count() == 0
    with page.context.expect_page() as popup_info:
        button.click()  # one click, never an error page
    popup = popup_info.value
    expect(popup.locator(f'main[data-page="{role}"]')).to_be_visible()
    assert popup.url.startswith(tool_server.base_url + "/")
    assert "reason code" not in frame.locator("body").inner_text().lower()


def test_platform_initiates_login_like_moodle(launch: Callable[..., Any], tool_requests: Callable[[Any], list[Any]],
                                              platform_server: Any, tool_server: Any) -> None:
    page = launch("student", framed=False)
    first = tool_requests(page)[0]
    assert first.method == "POST" and first.url == tool_server.base_url + "/lti/login"
    params = {k: v[0] for k, v in parse_qs(first.post_data or "").items()}
    state = platform_server.app.extensions["state"]
    assert params["iss"] == state.issuer
    assert params["client_id"] == state.client_id
    assert params["lti_deployment_id"] == state.deployment_id
    assert params["target_link_uri"] == tool_server.base_url + "/lti/launch"
    assert params["login_hint"] and params["lti_message_hint"]


def test_launch_message_is_signed_by_the_independent_platform(
        launch: Callable[..., Any], tool_frame: Callable[[Any], Any], platform_server: Any) -> None:
    state = platform_server.app.extensions["state"]
    before = len(state.launches)
    page = launch("teacher", framed=True)
    expect(tool_frame(page).locator('main[data-page="teacher"]')).to_be_visible()
    message = state.launches[before]
    assert message["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiResourceLinkRequest"
    assert message["https://purl.imsglobal.org/spec/lti/claim/launch_presentation"]["document_target"] == "iframe"
    assert message["https://purl.imsglobal.org/spec/lti/claim/context"]["id"] == state.context_id


def test_deep_linking_round_trip(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                 platform_server: Any) -> None:
    state = platform_server.app.extensions["state"]
    before = len(state.deep_link_items)
    page = launch("teacher", framed=True, message="deep_link")
    frame = tool_frame(page)
    expect(frame.locator('main[data-page="platform-deep-link-return"]')).to_be_visible()
    items = state.deep_link_items[before:]
    assert [item["type"] for item in items] == ["ltiResourceLink"]


def test_screenshot_helper_writes_a_png(launch: Callable[..., Any], tool_frame: Callable[[Any], Any],
                                        screenshot: Callable[..., Path], tmp_path: Path) -> None:
    page = launch("student", framed=True)
    expect(tool_frame(page).locator('main[data-page="student"]')).to_be_visible()
    path = screenshot(page, tmp_path / "shots" / "student-framed.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dynamic_registration_in_the_platforms_frame_closes_it(browser: Any, platform_server: Any,
                                                               tool_server: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{platform_server.base_url}/mod/lti/toolconfigure.php?url={tool_server.base_url}/lti/register")
        expect(page.locator("#registration-status")).to_have_text("closed")  # postMessage ran under the CSP
    finally:
        context.close()
    state = platform_server.app.extensions["state"]
    client_id = f"dynamic-client-{len(state.registrations)}"
    with tool_server.app.app_context():
        platform = db.session.scalars(select(Platform).where(Platform.client_id == client_id)).one()
        assert platform.issuer == state.issuer and platform.registered_via == "dynamic"
        assert [d.deployment_id for d in platform.deployments] == [str(100 + len(state.registrations))]
