"""The administrator's fair-use limits: own platform only, defaults from configuration, 0 = no limit, null = back
to the default, the platform's daily budget refuses every bot's questions, teachers and students refused."""
from __future__ import annotations

import pytest
from flask import Flask

from course_bots import backends, i18n
from course_bots.chat import operations as chat
from course_bots.llm.extractive import ExtractiveBackend
from course_bots.privacy import consent
from lti_tool.extensions import db
from tests.test_course_bots.conftest import BOTH_DATABASES, bearer, make_bot, make_session

OTHER = "https://other.example"


def _student(bot: object, sub: str) -> dict[str, str]:
    session = make_session(bot, sub=sub)  # type: ignore[arg-type]
    consent.record_consent(session, True, consent.current_notice(session.issuer, session.locale).version)
    db.session.commit()
    return bearer(session)


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_administrators_set_their_platforms_limits_over_the_defaults(ctx: Flask) -> None:
    bot, other = make_bot(), make_bot("course-x", issuer=OTHER)
    admin = bearer(make_session(bot, sub="admin", roles=("administrator",)))
    client = ctx.test_client()
    body = client.get("/api/v1/admin/quotas", headers=admin).get_json()
    assert body["rules"]["learner"]["default"] == {"questions_per_day": 100, "tokens_per_day": 200000,
                                                   "burst_per_minute": 6}
    assert body["rules"]["learner"]["set"] == {"questions_per_day": None, "tokens_per_day": None,
                                               "burst_per_minute": None}
    assert body["rules"]["platform"]["effective"]["questions_per_day"] is None and body["counters"] == "process"
    saved = client.put("/api/v1/admin/quotas", headers=admin,
                       json={"role": "learner", "questions_per_day": 0, "burst_per_minute": 10})
    learner = saved.get_json()["rules"]["learner"]
    assert learner["effective"] == {"questions_per_day": None, "tokens_per_day": 200000, "burst_per_minute": 10}
    back = client.put("/api/v1/admin/quotas", headers=admin, json={"role": "learner", "burst_per_minute": None})
    assert back.get_json()["rules"]["learner"]["effective"]["burst_per_minute"] == 6
    assert back.get_json()["rules"]["learner"]["set"]["questions_per_day"] == 0  # untouched: only fields sent change
    theirs = bearer(make_session(other, sub="admin", roles=("administrator",)))
    assert client.get("/api/v1/admin/quotas", headers=theirs).get_json()["rules"]["learner"]["set"][
        "questions_per_day"] is None  # another platform's administrator sees their own rules only


def test_invalid_rules_and_other_roles_are_refused(ctx: Flask) -> None:
    bot = make_bot()
    admin = bearer(make_session(bot, sub="admin", roles=("administrator",)))
    client = ctx.test_client()
    refused = ({"role": "learner", "burst_per_minute": -1}, {"role": "guest"},
               {"role": "learner", "questions_per_day": "5"}, {"role": "platform", "burst_per_minute": 5})
    for body in refused:
        response = client.put("/api/v1/admin/quotas", headers=admin, json=body)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_quota", body
    for role in ("instructor", "learner"):
        headers = bearer(make_session(bot, sub=role, roles=(role,)))
        assert client.get("/api/v1/admin/quotas", headers=headers).status_code == 403
        assert client.put("/api/v1/admin/quotas", headers=headers, json={"role": "learner"}).status_code == 403


def test_the_platform_budget_counts_every_bot_of_the_platform(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat, "default_search", lambda bot_id, query, k: [])
    monkeypatch.setattr(backends, "backend_for", lambda entry: ExtractiveBackend())
    first, second = make_bot(), make_bot("course-2")
    admin = bearer(make_session(first, sub="admin", roles=("administrator",)))
    client = ctx.test_client()
    assert client.put("/api/v1/admin/quotas", headers=admin,
                      json={"role": "platform", "questions_per_day": 2}).status_code == 200
    asks = [(first, "a"), (second, "b"), (second, "c")]
    codes = []
    for bot, sub in asks:
        response = client.post(f"/api/v1/bots/{bot.id}/chat", headers=_student(bot, sub),
                               json={"question": "Wann ist die Klausur?", "client_id": f"q-{sub}"})
        response.get_data()
        codes.append(response.status_code)
    assert codes == [200, 200, 429]
    expected = i18n.catalogue("de")["quota_platform_exceeded"].split("{time}")[0]
    assert response.get_json()["error"]["message"].startswith(expected)
