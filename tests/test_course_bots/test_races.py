"""Students opening a new course at once: per-course rows are created once, without 500s; reads write nothing."""
from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from course_bots.privacy.models import ConsentRecord
from course_bots.settings.models import BotSettings
from lti_tool.extensions import db

from .conftest import BOTH_DATABASES, bearer, make_bot, make_session

STUDENTS = 20


def at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together by a barrier; returns results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # reported by the assertion below, with the thread's number
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def settings_rows(app: Flask, bot_id: int) -> int:
    """How many settings rows the bot has."""
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(BotSettings)
                                     .where(BotSettings.bot_id == bot_id)) or 0)


@pytest.fixture
def new_course(app: Flask) -> dict[str, Any]:
    """A course bot just created by a launch, and the bearer headers of twenty students and one teacher."""
    with app.app_context():
        bot = make_bot("course-race")
        students = [bearer(make_session(bot, sub=f"student-{i}")) for i in range(STUDENTS)]
        teachers = [bearer(make_session(bot, sub=f"teacher-{i}", roles=("instructor",))) for i in range(STUDENTS)]
        return {"bot": bot.id, "students": students, "teachers": teachers}


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_twenty_students_open_a_new_course_at_once(app: Flask, new_course: dict[str, Any]) -> None:
    bot_id = new_course["bot"]

    def open_course(index: int) -> list[int]:
        client, headers = app.test_client(), new_course["students"][index]
        codes = [client.get(f"/api/v1/bots/{bot_id}/chat/info", headers=headers).status_code]
        status = client.get("/api/v1/consent", headers=headers)
        codes.append(status.status_code)
        version = status.get_json()["notice"]["version"]
        codes.append(client.post("/api/v1/consent", headers=headers,
                                 json={"accepted": True, "version": version}).status_code)
        codes.append(client.get("/api/v1/consent", headers=headers).status_code)
        return codes

    results = at_once(STUDENTS, open_course)
    assert results == [[200, 200, 200, 200]] * STUDENTS
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ConsentRecord)) == STUDENTS
    assert settings_rows(app, bot_id) == 0  # nobody changed a setting: reading them stored nothing


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_teachers_saving_settings_of_a_new_course_at_once_create_one_row(app: Flask,
                                                                         new_course: dict[str, Any]) -> None:
    bot_id = new_course["bot"]

    def save(index: int) -> int:
        client = app.test_client()
        return client.put(f"/api/v1/bots/{bot_id}/settings", headers=new_course["teachers"][index],
                          json={"pause_message": f"Back at {index}:00"}).status_code

    assert at_once(STUDENTS, save) == [200] * STUDENTS
    assert settings_rows(app, bot_id) == 1


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_reading_chat_info_and_settings_writes_nothing(app: Flask, new_course: dict[str, Any]) -> None:
    bot_id = new_course["bot"]
    writes: list[str] = []

    def count_flush(session: Any, context: Any, instances: Any) -> None:
        writes.extend(type(obj).__name__ for obj in list(session.new) + list(session.dirty))

    def count_commit(session: Any) -> None:
        writes.append("commit")

    client = app.test_client()
    with app.app_context():
        event.listen(db.session, "before_flush", count_flush)
        event.listen(db.session, "before_commit", count_commit)
    try:
        info = client.get(f"/api/v1/bots/{bot_id}/chat/info", headers=new_course["students"][0])
        settings = client.get(f"/api/v1/bots/{bot_id}/settings", headers=new_course["teachers"][0])
    finally:
        with app.app_context():
            event.remove(db.session, "before_flush", count_flush)
            event.remove(db.session, "before_commit", count_commit)
    assert info.status_code == 200 and info.get_json()["paused"] is False
    assert settings.status_code == 200 and settings.get_json()["settings"]["teaching_mode"] == "tutor"
    assert settings.get_json()["settings"]["system_prompt"]  # the tutor template, in the teacher's language
    assert writes == []
    assert settings_rows(app, bot_id) == 0
