"""The tool's keys: generated once, published as JWKS, rotated while the old public key stays published."""
from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from lti_tool.extensions import db, utcnow
from lti_tool.keys import jwks, rotate_keys, signing_key
from lti_tool.models import ToolKey


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_key_generated_once_and_published_without_private_parts(app: Flask, client: FlaskClient) -> None:
    first = client.get("/lti/jwks")
    assert first.status_code == 200 and first.mimetype == "application/json"
    [key] = first.json["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig") and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert client.get("/lti/jwks").json == first.json  # stored, not regenerated
    with app.app_context():
        assert db.session.query(ToolKey).count() == 1


def test_signing_key_verifies_against_published_jwks(app: Flask) -> None:
    with app.app_context():
        key = signing_key()
        token = jwt.encode({"hello": "world"}, key.private_key_pem, algorithm="RS256", headers={"kid": key.kid})
        [published] = jwks()["keys"]
        assert jwt.decode(token, jwt.PyJWK(published).key, algorithms=["RS256"]) == {"hello": "world"}


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_rotation_keeps_old_public_key_published_for_retire_hours(app: Flask) -> None:
    with app.app_context():
        old = signing_key()
        now = utcnow()
        new, retired = rotate_keys(now)
        assert [k.kid for k in retired] == [old.kid]
        assert signing_key().kid == new.kid != old.kid
        kids = [k["kid"] for k in jwks(now)["keys"]]
        assert kids == [new.kid, old.kid]  # the signing key first, the old one still verifiable
        hours = app.extensions["coursebots.config"].key_retire_hours
        assert [k["kid"] for k in jwks(now + timedelta(hours=hours) - timedelta(seconds=1))["keys"]] == kids
        assert [k["kid"] for k in jwks(now + timedelta(hours=hours, seconds=1))["keys"]] == [new.kid]
        # The next rotation after the window forgets the old private key entirely.
        rotate_keys(now + timedelta(hours=hours, seconds=2))
        assert db.session.scalars(db.select(ToolKey.kid)).all().count(old.kid) == 0


def test_rotate_keys_cli(app: Flask, client: FlaskClient) -> None:
    before = client.get("/lti/jwks").json["keys"][0]["kid"]
    result = app.test_cli_runner().invoke(args=["lti", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "New signing key" in result.output and f"Retired {before}" in result.output
    after = [k["kid"] for k in client.get("/lti/jwks").json["keys"]]
    assert after[1] == before and after[0] != before
