"""Liveness and readiness as an orchestrator sees them."""
from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade


def test_healthz(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_ready_at_head(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["database"] == "ok"
    assert response.json["migrations"]["current"] == response.json["migrations"]["head"]


def test_readyz_not_ready_behind_migrations(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        downgrade(revision="base")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "db upgrade" in response.json["migrations"]["problem"]


def test_readyz_model_state_never_fails_readiness(app: Flask, client: FlaskClient) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("model server down")

    app.extensions["coursebots.model_state"] = broken
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["model"]["state"] == "unknown"


def test_readyz_database_down(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(database_url="sqlite:////nonexistent-dir/coursebots.sqlite3")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["database"].startswith("unavailable")


def test_metrics_exposed(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"coursebots_launch_rejections_total" in response.data


def test_readyz_reports_the_default_model_without_loading_it(client: FlaskClient) -> None:
    body = client.get("/readyz").json
    assert body["status"] == "ready"
    assert body["model"] == {"backend": "extractive", "model": None, "state": "ready"}


def test_readyz_stays_ready_while_the_model_server_is_not_started(make_app) -> None:  # type: ignore[no-untyped-def]
    from flask_migrate import upgrade

    app = make_app(llm_base_url="http://127.0.0.1:9/v1", llm_model="m")
    with app.app_context():
        upgrade()
    body = app.test_client().get("/readyz")
    assert body.status_code == 200
    assert body.json["model"]["backend"] == "openai" and body.json["model"]["state"] == "not_started"
