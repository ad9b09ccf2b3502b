"""The administrator's read APIs and ``llm models``: own platform only, no secrets, teachers and students refused."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from flask import Flask

from course_bots.models import CourseBot
from course_bots.privacy.models import AuditEvent
from lti_tool.extensions import db
from lti_tool.models import Deployment, Platform
from tests.test_course_bots.conftest import ISSUER, bearer, make_bot, make_session

OTHER = "https://other.example"
CATALOGUE = ('[[models]]\nkey = "qwen"\nlabel = "Qwen 7B (local)"\nkind = "local"\nmodel = "qwen"\n'
             'context_window = 8192\nbase_url = "http://gpu.internal:8001/v1"\n\n'
             '[[models]]\nkey = "gw"\nlabel = "Gateway"\nkind = "external"\nmodel = "gpt"\nmax_new_tokens = 800\n'
             'context_window = 16000\nbase_url = "https://gw.example/v1"\napi_key_env = "COURSEBOTS_GW_KEY"\n\n'
             '[[models]]\nkey = "theirs"\nlabel = "Other platform only"\nkind = "local"\nmodel = "m"\n'
             f'context_window = 4096\nbase_url = "http://gpu2.internal/v1"\nplatforms = ["{OTHER}"]\n')
ADMIN_ROUTES = ("/api/v1/admin/platforms", "/api/v1/admin/models", "/api/v1/admin/settings")


def _register(issuer: str, client_id: str, deployments: tuple[str, ...], via: str = "manual") -> None:
    platform = Platform(issuer=issuer, client_id=client_id, name=f"LMS {client_id}", registered_via=via,
                        auth_login_url=issuer + "/auth", auth_token_url=issuer + "/token",
                        key_set_url=issuer + "/certs", key_set={"keys": [{"kid": "secret-ish"}]})
    platform.deployments.extend(Deployment(deployment_id=d) for d in deployments)
    db.session.add(platform)
    db.session.commit()


@pytest.fixture
def world(ctx: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """Two platforms with registrations and bots, a model catalogue, and tokens for each role of ours."""
    path = tmp_path / "models.toml"
    path.write_text(CATALOGUE, encoding="utf-8")
    monkeypatch.setenv("COURSEBOTS_GW_KEY", "sk-very-secret")
    config = ctx.extensions["coursebots.config"]
    monkeypatch.setitem(ctx.extensions, "coursebots.config",
                        dataclasses.replace(config, model_catalogue=str(path), privacy_min_students=7))
    _register(ISSUER, "client-a", ("1", "2"))
    _register(ISSUER, "client-b", ("9",), via="dynamic")
    _register(OTHER, "client-x", ("1",))
    bot = make_bot("course-1")
    make_bot("course-2")
    make_bot("course-x", issuer=OTHER)
    return {role: bearer(make_session(bot, sub=f"u-{role}", roles=(role,)))
            for role in ("administrator", "instructor", "learner", "teaching_assistant")}


def test_administrator_sees_own_platform_registrations_only(ctx: Flask, world: dict[str, dict[str, str]]) -> None:
    body = ctx.test_client().get("/api/v1/admin/platforms", headers=world["administrator"]).get_json()
    assert body["issuer"] == ISSUER
    registrations = [(p["client_id"], p["registered_via"]) for p in body["platforms"]]
    assert registrations == [("client-a", "manual"), ("client-b", "dynamic")]
    deployments = {d["deployment_id"]: d["bots"] for d in body["platforms"][0]["deployments"]}
    assert deployments == {"1": 2, "2": 0}
    assert body["totals"] == {"registrations": 2, "deployments": 3, "bots": 2}
    text = json.dumps(body)
    assert OTHER not in text and "client-x" not in text
    assert "secret-ish" not in text and "/certs" not in text and "/token" not in text  # no keys or endpoints
    assert body["platforms"][0]["created_at"]


@pytest.mark.parametrize("role", ["instructor", "learner", "teaching_assistant"])
def test_other_roles_are_refused(ctx: Flask, world: dict[str, dict[str, str]], role: str) -> None:
    client = ctx.test_client()
    for url in ADMIN_ROUTES + ("/api/v1/admin/usage", "/api/v1/admin/retention"):
        response = client.get(url, headers=world[role])
        assert response.status_code == 403, url
        assert response.get_json()["error"]["code"] == "forbidden"


def test_admin_routes_need_a_token(ctx: Flask, world: dict[str, dict[str, str]]) -> None:
    for url in ADMIN_ROUTES:
        assert ctx.test_client().get(url).status_code == 401


def test_preview_tokens_of_an_administrator_are_refused(ctx: Flask, world: dict[str, dict[str, str]]) -> None:
    from sqlalchemy import select

    bot = db.session.scalars(select(CourseBot).where(CourseBot.context_id == "course-1")).one()
    preview = bearer(make_session(bot, sub="adm", roles=("administrator",), preview=True))
    assert ctx.test_client().get("/api/v1/admin/platforms", headers=preview).status_code == 403


def test_another_issuers_administrator_sees_only_theirs(ctx: Flask, world: dict[str, dict[str, str]]) -> None:
    from sqlalchemy import select

    theirs = db.session.scalars(select(CourseBot).where(CourseBot.issuer == OTHER)).one()
    admin = bearer(make_session(theirs, sub="other-admin", roles=("administrator",)))
    body = ctx.test_client().get("/api/v1/admin/platforms", headers=admin).get_json()
    assert [p["client_id"] for p in body["platforms"]] == ["client-x"]
    assert body["platforms"][0]["deployments"] == [
        {"deployment_id": "1", "created_at": body["platforms"][0]["deployments"][0]["created_at"], "bots": 1}]
    models = ctx.test_client().get("/api/v1/admin/models", headers=admin).get_json()["models"]
    assert [m["key"] for m in models] == ["", "qwen", "gw", "theirs"]


def test_catalogue_shows_allowed_entries_without_urls_or_keys(ctx: Flask,
                                                              world: dict[str, dict[str, str]]) -> None:
    body = ctx.test_client().get("/api/v1/admin/models", headers=world["administrator"]).get_json()
    models = body["models"]
    assert [m["key"] for m in models] == ["", "qwen", "gw"]  # "theirs" is for another platform only
    assert models[0]["default"] is True and not any(m["default"] for m in models[1:])
    gateway = models[2]
    assert gateway["external"] is True and gateway["context_window"] == 16000 and gateway["max_answer_tokens"] == 800
    assert models[1]["external"] is False and models[1]["label"] == "Qwen 7B (local)"
    text = json.dumps(body)
    for secret in ("http://", "https://gw", "gpu.internal", "sk-very-secret", "COURSEBOTS_GW_KEY", "base_url",
                   "api_key"):
        assert secret not in text


def test_settings_are_the_thresholds_in_force(ctx: Flask, world: dict[str, dict[str, str]]) -> None:
    body = ctx.test_client().get("/api/v1/admin/settings", headers=world["administrator"]).get_json()
    values = {s["key"]: (s["env"], s["value"]) for s in body["settings"]}
    assert values["privacy_min_students"] == ("COURSEBOTS_PRIVACY_MIN_STUDENTS", 7)
    assert values["answer_score_threshold"][0] == "COURSEBOTS_ANSWER_SCORE_THRESHOLD"
    assert {"max_upload_mb", "max_course_mb", "retention_anonymize_days", "retention_delete_days"} <= set(values)
    assert body["set_by"] == "operator"
    assert "secret" not in json.dumps(body).lower()


def test_reads_write_no_audit_events(ctx: Flask, world: dict[str, dict[str, str]]) -> None:
    from sqlalchemy import func, select

    client = ctx.test_client()
    for url in ADMIN_ROUTES:
        assert client.get(url, headers=world["administrator"]).status_code == 200
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 0


def test_cli_llm_models_json_lists_the_same_entries(ctx: Flask, world: dict[str, dict[str, str]]) -> None:
    runner = ctx.test_cli_runner()
    result = runner.invoke(args=["llm", "models", "--platform", ISSUER, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    api = ctx.test_client().get("/api/v1/admin/models", headers=world["administrator"]).get_json()["models"]
    assert rows == api
    assert "sk-very-secret" not in result.output and "gpu.internal" not in result.output
    every = json.loads(runner.invoke(args=["llm", "models", "--json"]).output)
    assert [r["key"] for r in every] == ["", "qwen", "gw", "theirs"]
    text = runner.invoke(args=["llm", "models", "--platform", OTHER])
    assert text.exit_code == 0 and "Other platform only" in text.output and "external" in text.output
