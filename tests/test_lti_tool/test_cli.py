"""``flask --app lti_tool lti ...``: what an administrator types to register platforms and rotate keys."""
from __future__ import annotations

import json

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient

from coursebots_tests_lti_platform import FakePlatform  # loaded by conftest.py


def run(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["lti", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_info_json(app: Flask) -> None:
    urls = json.loads(run(app, "info", "--json"))
    assert urls["login_url"] == "http://localhost:5000/lti/login"
    assert urls["launch_url"] == urls["deep_link_url"] == "http://localhost:5000/lti/launch"
    assert urls["jwks_url"] == "http://localhost:5000/lti/jwks"
    assert urls["registration_url"] == "http://localhost:5000/lti/register"


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_add_list_update_remove(app: Flask, platform: FakePlatform) -> None:
    assert "No platforms registered" in run(app, "platform-list")
    assert "Registered platform" in platform.register(app).output
    [row] = json.loads(run(app, "platform-list", "--json"))
    assert (row["issuer"], row["client_id"], row["deployments"]) == (platform.issuer, platform.client_id, ["1"])
    assert row["jwks_url"] == platform.issuer + "/mod/lti/certs.php" and row["registered_via"] == "manual"
    assert "Updated platform" in platform.register(app, "2").output  # same registration, one more deployment
    [row] = json.loads(run(app, "platform-list", "--json"))
    assert row["deployments"] == ["1", "2"]
    assert platform.issuer in run(app, "platform-list")
    assert "Removed deployment 2" in run(app, "platform-remove", "--issuer", platform.issuer, "--deployment-id", "2")
    assert json.loads(run(app, "platform-list", "--json"))[0]["deployments"] == ["1"]
    run(app, "platform-remove", "--issuer", platform.issuer)
    assert json.loads(run(app, "platform-list", "--json")) == []


def test_issuer_with_several_client_ids(app: Flask, platform: FakePlatform) -> None:
    platform.register(app)
    other = FakePlatform(client_id="second-client", deployment_id="7", keys=platform.keys, issuer=platform.issuer)
    other.register(app)
    assert len(json.loads(run(app, "platform-list", "--json"))) == 2
    result = app.test_cli_runner().invoke(args=["lti", "platform-remove", "--issuer", platform.issuer])
    assert result.exit_code != 0 and "--client-id" in result.output
    run(app, "platform-remove", "--issuer", platform.issuer, "--client-id", "second-client")
    assert [r["client_id"] for r in json.loads(run(app, "platform-list", "--json"))] == [platform.client_id]


def test_remove_unknown_fails_clearly(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["lti", "platform-remove", "--issuer", "https://nowhere.example"])
    assert result.exit_code != 0 and "no platform registered" in result.output


def test_launches_for_many_clients_and_deployments_of_one_issuer(app: Flask, client: FlaskClient,
                                                                 platform: FakePlatform) -> None:
    app.extensions["coursebots.launch_handler"] = lambda ctx: Response(f"{ctx.client_id}/{ctx.deployment_id}")
    platform.register(app, "2")
    other = FakePlatform(client_id="second-client", deployment_id="7", keys=platform.keys, issuer=platform.issuer)
    other.register(app)
    assert platform.launch(client).data.decode() == f"{platform.client_id}/1"
    platform.deployment_id = "2"
    assert platform.launch(client).data.decode() == f"{platform.client_id}/2"
    assert other.launch(client).data.decode() == "second-client/7"
    other.deployment_id = "1"  # deployment 1 belongs to the other client id: refused already at login
    assert b"<code>unknown_deployment</code>" in client.post("/lti/login", data=other.login_params()).data
