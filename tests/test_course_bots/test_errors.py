"""One service error type: every feature's refusal is a ServiceError, answered by one handler in the API's shape."""
from __future__ import annotations

import pytest
from flask import Flask

from course_bots.chat.conversations import ConversationError
from course_bots.errors import ServiceError, error_response
from course_bots.materials.operations import MaterialError
from course_bots.models import CourseBot
from course_bots.privacy.consent import ConsentError
from course_bots.settings.operations import SettingsError
from lti_tool.extensions import db


@pytest.mark.parametrize("error, status, code", [
    (ConversationError("not_found", "gone", 404), 404, "not_found"),
    (ConsentError("outdated_notice", "read it again"), 409, "outdated_notice"),
    (MaterialError("too_large", "too big", 413), 413, "too_large"),
    (SettingsError("temperature", "temperature must be a number."), 400, "invalid_setting"),
])
def test_feature_errors_are_service_errors_with_their_status(error: ServiceError, status: int, code: str) -> None:
    assert isinstance(error, ServiceError)
    assert (error.status, error.code) == (status, code)


def test_the_one_handler_rolls_back_and_answers_the_error_shape(app: Flask) -> None:
    assert app.error_handler_spec[None][None][ServiceError] is error_response  # one handler, for every view
    with app.test_request_context():
        db.session.add(CourseBot(issuer="i", deployment_id="d", context_id="c", title="t"))
        response = error_response(ConsentError("outdated_notice", "Please read the new notice."))
        assert response.status_code == 409
        assert response.get_json() == {"error": {"code": "outdated_notice", "message": "Please read the new notice."}}
        assert not db.session.new  # the refused request's work is rolled back
        assert db.session.query(CourseBot).count() == 0
