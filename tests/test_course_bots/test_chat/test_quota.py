"""Fair use in the chat: bursts and daily limits refused with 429 + Retry-After in the student's language, reset
with the window, overrides only tighten, previews never counted, the model catalogue's rate enforced, hits kept
by pseudonym, and the chat keeps working (limits in the process) when Redis is down."""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from course_bots import backends, i18n
from course_bots.chat import operations as chat
from course_bots.llm.extractive import ExtractiveBackend
from course_bots.models import CourseBot
from course_bots.privacy import consent
from course_bots.quotas.operations import EXTENSION
from lti_tool.context import SessionToken
from lti_tool.extensions import db
from retrieval.types import Chunk, Locator, SearchHit

from tests.test_course_bots.conftest import BOTH_DATABASES, bearer, make_bot, make_session
from course_bots.chat.models import Message
from course_bots.privacy import operations as privacy
from course_bots.quotas import operations as quotas
from course_bots.quotas.counters import RedisCounters
from course_bots.quotas.models import BotQuota, QuotaHit
from course_bots.settings.operations import settings_for_update

# 2026-12-02 10:00:30 UTC = 11:00:30 in Berlin (CET): mid-minute, mid-day
NOW = datetime(2026, 12, 2, 10, 0, 30, tzinfo=timezone.utc).timestamp()


def fake_search(bot_id: int, query: str, k: int) -> list[SearchHit]:
    chunk = Chunk("c1", "7", "Lecture 3.pdf", "The learning rate controls the step size of gradient descent.",
                  position=4, position_end=4, locator=Locator.PAGE)
    return [SearchHit(chunk, 0.9, rank=1)]


class Clock:
    """The quota counters' clock, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def consented(session: SessionToken) -> dict[str, str]:
    consent.record_consent(session, True, consent.current_notice(session.issuer, session.locale).version)
    db.session.commit()
    return bearer(session)


@pytest.fixture
def world(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr(chat, "default_search", fake_search)
    monkeypatch.setattr(backends, "backend_for", lambda entry: ExtractiveBackend())
    clock = Clock()
    app.extensions[EXTENSION].clock = clock
    with app.app_context():
        bot = make_bot()
        yield {"app": app, "bot": bot.id, "clock": clock,
               "student": consented(make_session(bot)),
               "student_en": consented(make_session(bot, sub="user-43", locale="en-GB")),
               "teacher": bearer(make_session(bot, sub="teacher-1", roles=("instructor",))),
               "admin": bearer(make_session(bot, sub="admin-1", roles=("administrator",))),
               "preview": bearer(make_session(bot, sub="teacher-1", roles=("instructor",), preview=True))}


def post(client: FlaskClient, world: dict[str, Any], who: str, client_id: str, question: str = "What does the "
         "learning rate control?") -> Any:
    response = client.post(f"/api/v1/bots/{world['bot']}/chat", headers=world[who],
                           json={"question": question, "client_id": client_id})
    response.get_data()  # read the stream to its end, as the page does
    return response


def done_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    events = [block for block in response.get_data(as_text=True).strip().split("\n\n")]
    name, data = events[-1].split("\n", 1)
    assert name == "event: done"
    return dict(json.loads(data[len("data: "):]))


def stored_questions() -> int:
    from sqlalchemy import func, select

    return int(db.session.scalar(select(func.count()).select_from(Message).where(Message.role == "user")) or 0)


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_a_burst_is_refused_with_retry_after_and_resets_next_minute(client: FlaskClient,
                                                                    world: dict[str, Any]) -> None:
    for i in range(6):  # the default: 6 questions per minute
        assert post(client, world, "student", f"b{i}").status_code == 200
    refused = post(client, world, "student", "b6")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    error = refused.get_json()["error"]
    assert error["code"] == "rate_limited" and error["retry_after_s"] == 30
    assert error["resets_at"] == "2026-12-02T10:01:00Z"
    assert error["message"] == i18n.catalogue("de")["quota_rate_limited"].format(limit=6, time="11:01 CET")
    assert "Sie können ab 11:01 CET" in error["message"]  # German, Sie, the local time in Berlin
    assert stored_questions() == 6  # the refused question is not stored
    world["clock"].now += 30
    assert post(client, world, "student", "b6").status_code == 200  # the next minute: the same text is welcome


def test_the_daily_limit_names_the_local_reset_and_the_done_event_counts_down(client: FlaskClient,
                                                                              world: dict[str, Any]) -> None:

    db.session.add(BotQuota(bot_id=world["bot"], role="learner", questions_per_day=3))
    db.session.commit()
    lefts = [done_of(post(client, world, "student_en", f"d{i}"))["quota"] for i in range(3)]
    assert [q["questions_left"] for q in lefts] == [2, 1, 0]
    assert lefts[0] == {"questions_left": 2, "limit": 3, "resets_at": "2026-12-02T23:00:00Z"}
    world["clock"].now += 60
    refused = post(client, world, "student_en", "d3")
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["code"] == "quota_exceeded" and error["resets_at"] == "2026-12-02T23:00:00Z"
    assert error["message"] == i18n.catalogue("en")["quota_questions_exceeded"].format(
        limit=3, time="2026-12-03 00:00 CET")  # the date: the reset is not today
    assert int(refused.headers["Retry-After"]) == error["retry_after_s"] == 46710
    quota = client.get(f"/api/v1/bots/{world['bot']}/quota", headers=world["student_en"]).get_json()
    assert quota == {"questions_left": 0, "limit": 3, "resets_at": "2026-12-02T23:00:00Z"}
    other = client.get(f"/api/v1/bots/{world['bot']}/quota", headers=world["student"]).get_json()
    assert other["questions_left"] == 3  # per participant
    world["clock"].now += 13 * 3600  # past midnight in Berlin
    assert done_of(post(client, world, "student_en", "d3"))["quota"]["questions_left"] == 2


def test_a_retry_of_a_question_let_through_is_not_counted_twice(client: FlaskClient, world: dict[str, Any]) -> None:

    db.session.add(BotQuota(bot_id=world["bot"], role="learner", questions_per_day=2))
    db.session.commit()
    first = done_of(post(client, world, "student", "same"))
    again = done_of(post(client, world, "student", "same"))  # the page retried after a network error
    assert again["message_id"] == first["message_id"] and again["quota"]["questions_left"] == 1


def test_teacher_previews_are_never_limited_or_counted(client: FlaskClient, world: dict[str, Any]) -> None:
    for i in range(40):
        assert post(client, world, "preview", f"p{i}").status_code == 200
    quota = client.get(f"/api/v1/bots/{world['bot']}/quota", headers=world["preview"]).get_json()
    assert quota == {"questions_left": None, "limit": None, "resets_at": None}
    hits = client.get(f"/api/v1/bots/{world['bot']}/quota/hits", headers=world["teacher"]).get_json()
    assert hits["total"] == 0


def test_overrides_may_only_tighten(client: FlaskClient, world: dict[str, Any]) -> None:
    base = f"/api/v1/bots/{world['bot']}/quota/overrides"
    looser = client.put(base, headers=world["teacher"], json={"role": "learner", "questions_per_day": 101})
    assert looser.status_code == 400 and looser.get_json()["error"]["code"] == "invalid_quota"
    zero = client.put(base, headers=world["teacher"], json={"role": "learner", "burst_per_minute": 0})
    assert zero.status_code == 400  # 0 would mean "no limit": not a tightening
    assert client.put(base, headers=world["student"], json={"role": "learner"}).status_code == 403
    saved = client.put(base, headers=world["teacher"], json={"role": "learner", "burst_per_minute": 2})
    assert saved.status_code == 200
    learner = saved.get_json()["roles"]["learner"]
    assert learner["effective"]["burst_per_minute"] == 2 and learner["platform"]["burst_per_minute"] == 6
    assert [post(client, world, "student", f"o{i}").status_code for i in range(3)] == [200, 200, 429]
    # the administrator tightens below the override later: the smaller one holds
    admin = client.put("/api/v1/admin/quotas", headers=world["admin"], json={"role": "learner", "burst_per_minute": 1})
    assert admin.status_code == 200
    roles = client.get(base, headers=world["teacher"]).get_json()["roles"]
    assert roles["learner"]["effective"]["burst_per_minute"] == 1
    removed = client.put(base, headers=world["teacher"], json={"role": "learner", "burst_per_minute": None})
    assert removed.get_json()["roles"]["learner"]["override"]["burst_per_minute"] is None


def test_limit_hits_are_shown_to_teachers_by_pseudonym(client: FlaskClient, world: dict[str, Any]) -> None:
    for i in range(8):
        post(client, world, "student", f"h{i}")
    hits = client.get(f"/api/v1/bots/{world['bot']}/quota/hits", headers=world["teacher"])
    body = hits.get_json()
    assert body["total"] == 2
    assert body["by_reason"] == [{"code": "rate_limited", "role": "learner", "hits": 2, "participants": 1}]
    assert body["by_day"] == [{"day": "2026-12-02", "hits": 2}]
    assert re.fullmatch(r"[0-9a-f]{8}", body["by_participant"][0]["participant"])
    assert "user-42" not in hits.get_data(as_text=True)
    assert client.get(f"/api/v1/bots/{world['bot']}/quota/hits", headers=world["student"]).status_code == 403


def test_the_model_catalogue_rate_is_enforced_per_course(client: FlaskClient, world: dict[str, Any],
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nkey = "small"\nlabel = "Small"\nkind = "local"\nmodel = "m"\n'
                    'context_window = 4096\nrequests_per_minute = 2\n', encoding="utf-8")
    app = world["app"]
    monkeypatch.setitem(app.extensions, "coursebots.config",
                        dataclasses.replace(app.extensions["coursebots.config"], model_catalogue=str(path)))

    settings_for_update(world["bot"], "de").model_key = "small"
    db.session.commit()
    codes = [post(client, world, who, f"m-{who}").status_code for who in ("student", "student_en")]
    busy = post(client, world, "student", "m3")
    assert codes == [200, 200] and busy.status_code == 429
    assert busy.get_json()["error"]["code"] == "model_busy"
    assert busy.get_json()["error"]["message"] == i18n.catalogue("de")["quota_model_busy"].format(time="11:01 CET")
    assert post(client, world, "preview", "m4").status_code == 200  # previews are not counted


def test_redis_down_falls_back_to_the_process(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_migrate import upgrade

    monkeypatch.setattr(chat, "default_search", fake_search)
    monkeypatch.setattr(backends, "backend_for", lambda entry: ExtractiveBackend())
    app = make_app(redis_url="redis://127.0.0.1:1/15")  # nothing listens there
    with app.app_context():
        upgrade()
        bot = make_bot()
        headers = consented(make_session(bot))
        client = app.test_client()
        codes = [client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers,
                             json={"question": "What does the learning rate control?", "client_id": f"r{i}"})
                 .status_code for i in range(7)]
        assert app.extensions[EXTENSION].backend == "process"
        db.session.remove()
        db.engine.dispose()
    assert codes[:6] == [200] * 6 and codes[6] in (200, 429)  # a window may turn between asks; never a 500


def test_erasing_a_participant_erases_their_limit_hits(client: FlaskClient, world: dict[str, Any]) -> None:
    from sqlalchemy import func, select

    for i in range(7):
        post(client, world, "student", f"e{i}")
    assert db.session.scalar(select(func.count()).select_from(QuotaHit)) == 1
    pseudonym = db.session.scalars(select(QuotaHit.pseudonym)).one()
    privacy.erase_pseudonym(world["bot"], pseudonym)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(QuotaHit)) == 0


def test_tokens_per_day_refuse_once_the_answers_used_them(client: FlaskClient, world: dict[str, Any]) -> None:

    db.session.add(BotQuota(bot_id=world["bot"], role="learner", tokens_per_day=1000))
    db.session.commit()
    bot = db.session.get(CourseBot, world["bot"])
    assert bot is not None
    session = make_session(bot)
    quotas.add_tokens(session, world["bot"], answer_id=1, tokens=600)
    quotas.add_tokens(session, world["bot"], answer_id=1, tokens=600)  # the same answer again: counted once
    assert post(client, world, "student", "t1").status_code == 200
    quotas.add_tokens(session, world["bot"], answer_id=2, tokens=400)
    refused = post(client, world, "student", "t2")
    assert refused.status_code == 429
    assert refused.get_json()["error"]["message"] == i18n.catalogue("de")["quota_tokens_exceeded"].format(
        time="03.12.2026 00:00 CET")


@pytest.mark.redis
def test_the_chat_counts_in_redis_and_keeps_working_when_redis_stops(make_app: Any, redis_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import redis
    from flask_migrate import upgrade

    monkeypatch.setattr(chat, "default_search", fake_search)
    monkeypatch.setattr(backends, "backend_for", lambda entry: ExtractiveBackend())
    client_redis = redis.Redis.from_url(redis_url)
    for key in client_redis.scan_iter("coursebots:quota:*"):
        client_redis.delete(key)
    app = make_app(redis_url=redis_url)
    with app.app_context():
        upgrade()
        bot = make_bot()
        headers = consented(make_session(bot))
        client = app.test_client()

        def ask(n: int) -> int:
            response = client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers,
                                   json={"question": "What does the learning rate control?", "client_id": f"x{n}"})
            response.get_data()
            return response.status_code

        assert [ask(n) for n in range(2)] == [200, 200]
        store = app.extensions[EXTENSION]
        assert store.backend == "redis" and any(client_redis.scan_iter("coursebots:quota:day:*"))
        store.redis = RedisCounters("redis://127.0.0.1:1/15")  # Redis stops answering mid-way
        assert [ask(n) for n in range(2, 4)] == [200, 200]  # the chat keeps working, counted in the process
        assert store.backend == "process"
        quota = client.get(f"/api/v1/bots/{bot.id}/quota", headers=headers).get_json()
        assert quota["limit"] == 100 and quota["questions_left"] == 98  # the process counted the last two
        db.session.remove()
        db.engine.dispose()


def test_the_retention_purge_deletes_old_limit_hits(world: dict[str, Any]) -> None:
    from datetime import date, timedelta

    from sqlalchemy import select

    today = date.today()
    for day in (today, today - timedelta(days=200)):
        db.session.add(QuotaHit(bot_id=world["bot"], day=day, role="learner", pseudonym="a" * 64,
                                code="rate_limited", hits=1))
    db.session.commit()
    privacy.purge()
    db.session.commit()
    assert list(db.session.scalars(select(QuotaHit.day))) == [today]
