"""``/api/v1/bots/<bot_id>/test-questions``: the teacher's test questions, their newest results and the history."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from flask import Blueprint, Response, current_app, jsonify

from course_bots.bots import own_bot
from course_bots.evaluation import jobs
from course_bots.evaluation import operations as svc
from course_bots.schemas import TestQuestionBody, parse_body
from lti_tool.context import JSON_BODY_BYTES, api_error, max_body, require_session
from lti_tool.extensions import db

bp = Blueprint("api_test_questions", __name__, url_prefix="/api/v1/bots/<int:bot_id>")
F = TypeVar("F", bound=Callable[..., Any])


def teacher_only(view: F) -> F:
    """Teachers of this course only."""
    return require_session(teacher=True)(own_bot(view))


@bp.get("/test-questions")
@teacher_only
def overview(bot_id: int) -> Response:
    """Questions, files, the newest results and the history; a due run starts in the background (not in here)."""
    data = svc.overview(bot_id)
    db.session.commit()  # end this request's reads before the run's thread writes
    if jobs.start_if_due(current_app._get_current_object(), bot_id) is not None:  # type: ignore[attr-defined]
        data["pending"] = True
    return jsonify(data)


@bp.post("/test-questions")
@max_body(JSON_BODY_BYTES)
@teacher_only
def create(bot_id: int) -> tuple[Response, int]:
    """Add a test question (typed, or copied from a logged question: then labelled ``student_log``)."""
    body = parse_body(TestQuestionBody)
    question = svc.create_question(bot_id, body.question, body.expected_file, body.expected_page, body.source)
    db.session.commit()
    return jsonify(svc.question_json(question)), 201


@bp.delete("/test-questions/<int:question_id>")
@teacher_only
def delete(bot_id: int, question_id: int) -> Response | tuple[str, int]:
    """Remove a test question."""
    question = svc.get_question(bot_id, question_id)
    if question is None:
        return api_error("not_found", "No such test question.", 404)
    svc.delete_question(question)
    db.session.commit()
    return "", 204
