"""Deep Linking round trip: the teacher's "Select content" gets a signed resource link to the course bot."""
from __future__ import annotations

import re
from html import unescape

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from coursebots_tests_lti_platform import INSTRUCTOR, LEARNER, FakePlatform  # loaded by conftest.py


def _auto_post(page: str) -> tuple[str, str]:
    action = re.search(r'<form id="deep-link-response" action="([^"]+)" method="post">', page)
    token = re.search(r'<input type="hidden" name="JWT" value="([^"]+)">', page)
    assert action and token, page
    return unescape(action.group(1)), token.group(1)


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_deep_linking_round_trip(app: Flask, client: FlaskClient, registered_platform: FakePlatform) -> None:
    response = registered_platform.launch(client, roles=INSTRUCTOR, deep_linking=True, context_title="Physik I")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    return_url, token = _auto_post(page)
    assert return_url == registered_platform.issuer + "/mod/lti/contentitem_return.php"
    nonce = response.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">document.getElementById("deep-link-response").submit();</script>' in page
    assert f"frame-ancestors 'self' {registered_platform.issuer};" in response.headers["Content-Security-Policy"]

    tool_jwks = client.get("/lti/jwks").json
    items = registered_platform.accept_deep_link_response(token, tool_jwks)
    assert items == [{"type": "ltiResourceLink", "title": "CourseBots: Physik I",
                      "url": "http://localhost:5000/lti/launch"}]

    header = jwt.get_unverified_header(token)
    [key] = [k for k in tool_jwks["keys"] if k["kid"] == header["kid"]]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=registered_platform.issuer)
    assert claims["iss"] == registered_platform.client_id
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == "1"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == {"moodle": "opaque"}  # echoed
    assert claims["exp"] > claims["iat"]


def test_learner_cannot_deep_link(client: FlaskClient, registered_platform: FakePlatform) -> None:
    response = registered_platform.launch(client, roles=LEARNER, deep_linking=True)
    assert response.status_code == 403 and b"<code>deep_linking_not_allowed</code>" in response.data


def test_deep_link_response_signed_with_rotated_key(app: Flask, client: FlaskClient,
                                                    registered_platform: FakePlatform) -> None:
    first = client.get("/lti/jwks").json["keys"][0]["kid"]
    assert app.test_cli_runner().invoke(args=["lti", "rotate-keys"]).exit_code == 0
    response = registered_platform.launch(client, roles=INSTRUCTOR, deep_linking=True)
    _, token = _auto_post(response.get_data(as_text=True))
    tool_jwks = client.get("/lti/jwks").json
    assert jwt.get_unverified_header(token)["kid"] != first
    assert first in {k["kid"] for k in tool_jwks["keys"]}
    assert registered_platform.accept_deep_link_response(token, tool_jwks)[0]["type"] == "ltiResourceLink"
