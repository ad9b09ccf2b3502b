"""Usage over time: every day of the window (zeros too), per course and per model; own platform or own bot only."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask

from course_bots.chat import usage
from course_bots.chat.models import ChatSession, Message
from course_bots.llm.catalogue import EXTRACTIVE_LABEL
from lti_tool.extensions import db, utcnow

from tests.test_course_bots.conftest import BOTH_DATABASES, bearer, make_bot, make_session

OTHER = "https://other.example.org"


def answer(bot_id: int, model: str, when: datetime, tokens: tuple[int, int], latency_ms: int,
           preview: bool = False, kind: str | None = None) -> None:
    """A stored question and its answer."""
    conversation = ChatSession(bot_id=bot_id, pseudonym="p", role="learner", preview=preview)
    db.session.add(conversation)
    db.session.flush()
    question = Message(session_id=conversation.id, role="user", text="q", created_at=when)
    db.session.add(question)
    db.session.flush()
    db.session.add(Message(session_id=conversation.id, role="assistant", text="a", reply_to_id=question.id,
                           model_id=model, prompt_tokens=tokens[0], completion_tokens=tokens[1],
                           latency_ms=latency_ms, created_at=when, answer_kind=kind))
    db.session.commit()


@pytest.fixture
def world(ctx: Flask) -> dict[str, object]:
    today = utcnow().date()
    mine, second, theirs = make_bot("c1"), make_bot("c2", title="Statistik"), make_bot("c9", issuer=OTHER)
    usage.add_usage(mine.id, day=today, questions=3, answers=2, errors=1, prompt_tokens=300, completion_tokens=40)
    usage.add_usage(mine.id, day=today - timedelta(days=2), questions=1, answers=1)
    usage.add_usage(second.id, day=today, questions=5, answers=5)
    usage.add_usage(theirs.id, day=today, questions=100)
    usage.add_usage(mine.id, day=today - timedelta(days=40), questions=7)  # outside a 30-day window
    db.session.commit()
    noon = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=12)
    answer(mine.id, "Qwen 7B", noon, (100, 20), 2500)
    answer(mine.id, "Qwen 7B", noon, (200, 20), 1500)
    answer(mine.id, "refusal", noon, (0, 0), 10)
    answer(mine.id, "Qwen 7B", noon, (999, 999), 9999, preview=True)  # a teacher's preview is not usage
    answer(theirs.id, "Other model", noon, (5, 5), 100)
    return {"today": today, "mine": mine, "second": second, "theirs": theirs}


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_admin_sees_every_day_of_own_platform(ctx: Flask, world: dict) -> None:  # type: ignore[type-arg]
    admin = bearer(make_session(world["mine"], sub="adm", roles=("administrator",)))  # type: ignore[arg-type]
    body = ctx.test_client().get("/api/v1/admin/usage/daily?days=30", headers=admin).get_json()
    days = body["days"]
    assert len(days) == 30
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    assert days[-1]["date"] == world["today"].isoformat()  # type: ignore[attr-defined]
    assert days[-1] == {"date": days[-1]["date"], "questions": 8, "answers": 7, "errors": 1, "tokens_in": 300,
                        "tokens_out": 40, "gpu_seconds": 4.0}
    assert days[-3]["questions"] == 1 and days[-3]["gpu_seconds"] is None
    assert days[0]["questions"] == 0
    assert sum(d["questions"] for d in days) == 9  # neither the other platform nor the 40-day-old row
    by_model = {m["model"]: m for m in body["by_model"]}
    assert set(by_model) == {"Qwen 7B", "refusal"}
    assert by_model["Qwen 7B"] == {"model": "Qwen 7B", "answers": 2, "tokens_in": 300, "tokens_out": 40,
                                   "answer_seconds": 4.0, "extractive": False}
    courses = {c["title"]: c for c in body["by_course"]}
    assert courses["Statistik"]["questions"] == 5 and courses["Einführung in die KI"]["questions"] == 4
    assert all(c["title"] != "c9" for c in body["by_course"]) and len(courses) == 2


def test_teacher_sees_own_course_per_day(ctx: Flask, world: dict) -> None:  # type: ignore[type-arg]
    bot = world["mine"]
    teacher = bearer(make_session(bot, sub="t", roles=("instructor",)))  # type: ignore[arg-type]
    client = ctx.test_client()
    body = client.get(f"/api/v1/bots/{bot.id}/usage/daily?days=7", headers=teacher).get_json()  # type: ignore
    assert len(body["days"]) == 7 and "by_course" not in body
    assert body["days"][-1]["questions"] == 3
    assert client.get(f"/api/v1/bots/{world['second'].id}/usage/daily",  # type: ignore[attr-defined]
                      headers=teacher).status_code in (403, 404)


def test_students_and_bad_windows_are_refused(ctx: Flask, world: dict) -> None:  # type: ignore[type-arg]
    bot = world["mine"]
    client = ctx.test_client()
    student = bearer(make_session(bot))  # type: ignore[arg-type]
    assert client.get("/api/v1/admin/usage/daily", headers=student).status_code == 403
    assert client.get(f"/api/v1/bots/{bot.id}/usage/daily", headers=student).status_code == 403  # type: ignore
    admin = bearer(make_session(bot, sub="adm", roles=("administrator",)))  # type: ignore[arg-type]
    for days in ("0", "367", "abc", "-1"):
        response = client.get(f"/api/v1/admin/usage/daily?days={days}", headers=admin)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_request"
    assert len(client.get("/api/v1/admin/usage/daily", headers=admin).get_json()["days"]) == 30


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_answers_the_fallback_wrote_count_as_quoted_passages_not_as_the_model(ctx: Flask) -> None:
    """Stored with their kind: while the model was down the extractive fallback answered under the model's label;
    those answers are the fallback's, and no model time is counted for them."""
    bot = make_bot("c1")
    today = utcnow().date()
    noon = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=12)
    answer(bot.id, "Qwen 7B", noon, (100, 20), 2000, kind="openai")
    answer(bot.id, "Qwen 7B", noon, (0, 0), 300, kind="fallback")
    answer(bot.id, "Qwen 7B", noon, (50, 10), 1000)  # stored before kinds were recorded: the label decides
    rows, seconds = usage._model_usage(today, None, bot.id)
    by_model = {row["model"]: row for row in rows}
    assert by_model["Qwen 7B"]["answers"] == 2 and by_model[EXTRACTIVE_LABEL]["answers"] == 1
    assert by_model[EXTRACTIVE_LABEL]["extractive"] and not by_model["Qwen 7B"]["extractive"]
    assert seconds == {today.isoformat(): 3.0}, "model time: the model's own answers only"
