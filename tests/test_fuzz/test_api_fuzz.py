"""Schemathesis walks every operation of docs/openapi.yaml as a teacher and a student: never a 5xx or a traceback."""
from __future__ import annotations

import pytest
from flask import Flask

from tests.test_course_bots.conftest import bearer, make_bot, make_session

from .api_fuzz import fuzz

pytestmark = pytest.mark.slow

EXAMPLES = 8  # per operation and role; bench/faults/api_fuzz.py runs more and prints the 2xx share


def test_fuzzed_api_never_answers_5xx_or_a_traceback(app: Flask) -> None:
    pytest.importorskip("schemathesis")
    with app.app_context():
        bot = make_bot()
        headers = {"teacher": bearer(make_session(bot, sub="teacher-1", roles=("instructor",))),
                   "student": bearer(make_session(bot, sub="student-1"))}
        bot_id = bot.id
    result = fuzz(app, bot_id, headers, examples=EXAMPLES)
    assert result.total > 0
    assert result.failures == []
    assert result.statuses["2xx"] > 0, "valid sessions reach the handlers"


def test_a_page_of_a_deleted_bot_gets_404_not_500(app: Flask) -> None:
    """Found by the fuzzer: after DELETE /bots/{id}, the same page's session wrote an FAQ entry (foreign key: 500)."""
    client = app.test_client()
    with app.app_context():
        bot = make_bot()
        teacher = bearer(make_session(bot, sub="teacher-1", roles=("instructor",)))
        student = bearer(make_session(bot, sub="student-1"))
        base = f"/api/v1/bots/{bot.id}"
    assert client.delete(base, json={"confirm": "delete"}, headers=teacher).status_code == 204
    for method, path, body, headers in [("post", "/faq", {"question": "Q?", "answer": "A."}, teacher),
                                        ("put", "/settings", {"tone": "friendly"}, teacher),
                                        ("post", "/chat", {"message": "Wann ist die Klausur?"}, student),
                                        ("get", "/conversations", None, student)]:
        response = getattr(client, method)(base + path, json=body, headers=headers)
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"]["code"] == "not_found"
