"""The product side of a launch: bot per course, pseudonymous session token, the role's page."""
from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from course_bots.models import CourseBot
from course_bots.privacy_rules import pseudonym
from lti_tool.context import LaunchContext, Role, decode_token, is_teacher, map_roles
from lti_tool.extensions import current_config, db

ISS = "https://moodle.example.edu"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


def launch(roles: list[str], context_id: str = "c1", sub: str | None = "user-42", deployment: str = "1",
           locale: str = "de-DE") -> LaunchContext:
    return LaunchContext(issuer=ISS, client_id="client", deployment_id=deployment, context_id=context_id,
                         context_title="Einführung in die KI", resource_link_id="rl1",
                         message_type="LtiResourceLinkRequest", roles=map_roles(roles), locale=locale,
                         user_sub=sub, names=("Anna-Lena Müller", "Anna-Lena", "Müller"))


def run_launch(app: Flask, ctx: LaunchContext) -> tuple[str, str]:
    with app.test_request_context("/lti/launch", method="POST"):
        response = app.extensions["coursebots.launch_handler"](ctx)
        html = response.get_data(as_text=True)
        token = re.search(r'name="coursebots-token" content="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        return html, token


@pytest.mark.parametrize("app", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_first_launch_creates_bot_once_and_activities_share_it(app: Flask) -> None:
    run_launch(app, launch([INSTRUCTOR]))
    run_launch(app, launch([LEARNER], sub="user-43"))
    run_launch(app, launch([LEARNER], context_id="c2"))
    with app.app_context():
        bots = db.session.scalars(select(CourseBot).order_by(CourseBot.id)).all()
        assert [(b.context_id, b.title) for b in bots] == [("c1", "Einführung in die KI"),
                                                           ("c2", "Einführung in die KI")]


def test_teacher_and_student_land_on_their_pages(app: Flask) -> None:
    teacher_html, _ = run_launch(app, launch([INSTRUCTOR]))
    student_html, _ = run_launch(app, launch([LEARNER]))
    assert 'data-page="teacher"' in teacher_html
    assert 'data-page="student"' in student_html
    assert '<html lang="de">' in student_html


def test_token_carries_pseudonym_not_identity(app: Flask) -> None:
    html, token = run_launch(app, launch([LEARNER]))
    assert "user-42" not in html and "Müller" not in html
    with app.app_context():
        claims = decode_token(current_config().secret_key, token)
        bot = db.session.scalars(select(CourseBot)).one()
        assert claims.pseudonym == pseudonym(current_config().pseudonym_key, ISS, "user-42", bot.id)
        assert claims.role_set == {Role.LEARNER}
        assert claims.names == ("Anna-Lena Müller", "Anna-Lena", "Müller")  # only inside the encrypted token


def test_anonymous_launch_gets_per_session_pseudonym(app: Flask) -> None:
    _, first = run_launch(app, launch([LEARNER], sub=None))
    _, second = run_launch(app, launch([LEARNER], sub=None))
    with app.app_context():
        key = current_config().secret_key
        a, b = decode_token(key, first), decode_token(key, second)
        assert a.anonymous and a.pseudonym != b.pseudonym


def test_session_renewal_and_expiry(app: Flask) -> None:
    client = app.test_client()
    _, token = run_launch(app, launch([LEARNER]))
    assert client.get("/api/v1/session").status_code == 401
    info = client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
    assert info.json["role"] == "learner" and "pseudonym" not in info.json
    renewed = client.post("/api/v1/session/renew", headers={"Authorization": f"Bearer {token}"})
    assert renewed.status_code == 200 and renewed.json["token"] != token
    forged = client.get("/api/v1/session", headers={"Authorization": "Bearer " + token[:-4] + "AAAA"})
    assert forged.status_code == 401 and forged.json["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("roles, teacher", [
    ([INSTRUCTOR], True),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"], True),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"], True),
    (["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator", LEARNER], True),
    ([LEARNER], False),
    (["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"], False),
    ([], False),
])
def test_role_mapping(roles: list[str], teacher: bool) -> None:
    assert is_teacher(map_roles(roles)) is teacher
