"""Access control, generically: every API route in ``app.url_map`` is checked, so new routes are covered at once.

For each rule under /api/v1 and each method:
- without a session token -> 401 (or 403 for routes whose only credential is a signed link);
- the route must be guarded by ``require_session`` (a test failure names any unguarded route);
- teacher routes (``require_session(teacher=True)``) with a learner's token -> 403;
- another course: a token of course B on course A's ids -> 403/404;
- another user: for ids a user owns (conversations, messages), a second learner of the same course -> 403/404;
- and, so that the denials above mean something, the owner's own GET succeeds past authorization.
Every id parameter needs an entry in ``OBJECTS`` (the test fails, naming it, when a route adds a new one).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from course_bots.chat.models import ChatSession, Message
from course_bots.evaluation.models import TestQuestion
from course_bots.materials.models import FaqEntry, Material
from course_bots.models import CourseBot
from lti_tool.context import SessionToken, current_session, issue_token, require_session
from lti_tool.extensions import db

API_PREFIX = "/api/v1/"
DENIED = (403, 404)
# Routes authenticated by a short-lived signature in the URL instead of a bearer token (opened in a new tab).
SIGNED_LINK_ROUTES = {"api_materials.file": "api_materials.file_link"}
# Bodies valid enough to get past validation, so that authorization (not a 400) decides: endpoint -> JSON.
BODIES: dict[str, dict[str, Any]] = {"api_chat.feedback": {"value": "up"}}
# Routes deliberately open without a session (none so far): endpoint -> why.
PUBLIC_ROUTES: dict[str, str] = {}

_GUARD_CODE = require_session()(lambda: None).__code__


def session_guard(view: Callable[..., Any]) -> bool | None:
    """``teacher`` of the ``require_session`` wrapping a view (through other decorators), or None when unguarded."""
    func: Any = view
    while func is not None:
        if getattr(func, "__code__", None) is _GUARD_CODE:
            cells = dict(zip(func.__code__.co_freevars, (c.cell_contents for c in func.__closure__ or ())))
            return bool(cells["teacher"])
        func = getattr(func, "__wrapped__", None)
    return None


def api_rules(app: Flask) -> Iterator[tuple[Rule, str]]:
    """(rule, method) for every API route."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield rule, method


@dataclass
class World:
    """Two courses, a teacher and two learners in A, a teacher and a learner in B, and A's objects."""

    app: Flask
    bots: dict[str, int] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def token(self, course: str, who: str) -> str:
        """A bearer token for a person of a course (``admin``, ``teacher``, ``learner``, ``learner2``)."""
        now = int(time.time())
        roles = {"admin": ("administrator", "instructor"), "teacher": ("instructor",)}.get(who, ("learner",))
        claims = SessionToken(issuer="https://lms.example", deployment_id="1", bot_id=self.bots[course],
                              pseudonym=f"{course}-{who}".ljust(64, "0"), roles=roles, locale="en",
                              expires_at=now + 600, launched_at=now)
        return issue_token(self.app.extensions["coursebots.config"].secret_key, claims)


def _conversation(world: World) -> int:
    session = ChatSession(bot_id=world.bots["A"], pseudonym="A-learner".ljust(64, "0"), role="learner",
                          title="Question about lecture 3")
    db.session.add(session)
    db.session.flush()
    return int(session.id)


def _message(world: World) -> int:
    message = Message(session_id=world.ids.get("conversation_id") or _conversation(world), role="assistant",
                      text="An answer.", citations=[])
    db.session.add(message)
    db.session.flush()
    return int(message.id)


def _material(world: World) -> int:
    material = Material(bot_id=world.bots["A"], filename="lecture.pdf", storage_key="none/lecture.pdf", sha256="0" * 64,
                        students_may_open=True)
    db.session.add(material)
    db.session.flush()
    return int(material.id)


def _faq(world: World) -> int:
    entry = FaqEntry(bot_id=world.bots["A"], question="When is the exam?", answer="In July.")
    db.session.add(entry)
    db.session.flush()
    return int(entry.id)


def _test_question(world: World) -> int:
    question = TestQuestion(bot_id=world.bots["A"], question="When is the exam?", expected_file="lecture.pdf")
    db.session.add(question)
    db.session.flush()
    return int(question.id)


# id parameter -> (who owns such an object: "course" or "user", factory creating one in course A for A-learner)
OBJECTS: dict[str, tuple[str, Callable[[World], int]]] = {
    "bot_id": ("course", lambda world: world.bots["A"]),
    "conversation_id": ("user", _conversation),
    "message_id": ("user", _message),
    "material_id": ("course", _material),
    "faq_id": ("course", _faq),
    "number": ("course", lambda world: 1),  # a page of the material above (its routes name the material too)
    "question_id": ("course", _test_question),
}


@pytest.fixture
def world(app: Flask) -> World:
    """Courses A and B with one object of every kind in A (owned by A's first learner where owned by a user)."""
    created = World(app)
    with app.app_context():
        for course in ("A", "B"):
            bot = CourseBot(issuer="https://lms.example", deployment_id="1", context_id=f"course-{course}",
                            title=f"Course {course}")
            db.session.add(bot)
            db.session.flush()
            created.bots[course] = bot.id
        for name, (_owner, factory) in OBJECTS.items():
            created.ids[name] = factory(created)
        db.session.commit()
    return created


def _call(client: FlaskClient, rule: Rule, method: str, ids: dict[str, int], token: str | None,
          error_code: list[str] | None = None) -> int:
    url = rule.build({name: ids[name] for name in rule.arguments}, append_unknown=False)[1]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"json": BODIES.get(rule.endpoint, {})} if method in ("POST", "PUT", "PATCH") else {}
    response = client.open(url, method=method, headers=headers, **kwargs)
    if error_code is not None and response.is_json and isinstance(response.json, dict):
        error_code.append(str((response.json.get("error") or {}).get("code", "")))
    return response.status_code


def test_every_id_parameter_has_an_object_factory(app: Flask) -> None:
    unknown = {(rule.rule, arg) for rule, _ in api_rules(app) for arg in rule.arguments if arg not in OBJECTS}
    assert unknown == set(), "add a factory for these id parameters to OBJECTS"


def test_every_api_route_requires_a_session(app: Flask) -> None:
    unguarded = [rule.endpoint for rule, _ in api_rules(app)
                 if session_guard(app.view_functions[rule.endpoint]) is None
                 and rule.endpoint not in SIGNED_LINK_ROUTES and rule.endpoint not in PUBLIC_ROUTES]
    assert unguarded == []


def access_problems(app: Flask, client: FlaskClient, world: World) -> list[str]:
    """Every access-control violation found over all API routes."""
    problems: list[str] = []
    checked = 0
    for rule, method in api_rules(app):
        if rule.endpoint in PUBLIC_ROUTES:
            continue
        where = f"{method} {rule.rule}"
        ids = {name: world.ids[name] for name in rule.arguments}
        teacher_route = session_guard(app.view_functions[rule.endpoint])
        status = _call(client, rule, method, ids, None)
        expected = 403 if rule.endpoint in SIGNED_LINK_ROUTES else 401
        if status != expected:
            problems.append(f"{where}: {status} without credentials, expected {expected}")
        if rule.endpoint in SIGNED_LINK_ROUTES:
            continue
        if teacher_route and (status := _call(client, rule, method, ids, world.token("A", "learner"))) != 403:
            problems.append(f"{where}: learner reached a teacher route ({status})")
        who = "teacher" if teacher_route else "learner"
        if rule.arguments and (status := _call(client, rule, method, ids, world.token("B", who))) not in DENIED:
            problems.append(f"{where}: {who} of another course got {status}")
        owned_by_user = any(OBJECTS[name][0] == "user" for name in rule.arguments)
        if owned_by_user and not teacher_route and (
                status := _call(client, rule, method, ids, world.token("A", "learner2"))) not in DENIED:
            problems.append(f"{where}: another learner of the same course got {status}")
        if method == "GET" and not any(_owner_passes(client, rule, ids, world.token("A", owner))
                                       for owner in ((who, "admin") if teacher_route else (who,))):
            problems.append(f"{where}: even its owner ({who} or admin) was refused: the checks above prove nothing")
        checked += 1
    assert checked > 0
    return problems


def _owner_passes(client: FlaskClient, rule: Rule, ids: dict[str, int], token: str) -> bool:
    """Whether a GET by the rightful owner gets past authorization (a business refusal such as "logs closed
    below the privacy threshold" is not an authorization one)."""
    codes: list[str] = []
    status = _call(client, rule, "GET", ids, token, codes)
    return status != 401 and not (status == 403 and codes[-1:] == ["forbidden"])


def test_access_control(app: Flask, client: FlaskClient, world: World) -> None:
    problems = access_problems(app, client, world)
    assert problems == [], "\n".join(problems)


def test_the_checker_finds_leaky_routes(app: Flask, client: FlaskClient, world: World) -> None:
    """A test that cannot fail proves nothing: routes that forget their checks are reported."""
    @require_session()
    def leaky_teacher_page(bot_id: int) -> dict[str, int]:
        return {"bot": bot_id, "as": current_session().bot_id}

    @require_session()
    def leaky_conversation(bot_id: int, conversation_id: int) -> dict[str, int]:
        return {"conversation": conversation_id}

    app.add_url_rule("/api/v1/bots/<int:bot_id>/leak", "leak", leaky_teacher_page)
    app.add_url_rule("/api/v1/bots/<int:bot_id>/leak/<int:conversation_id>", "leak_conv", leaky_conversation)
    app.add_url_rule("/api/v1/open", "open_route", lambda: {"open": True})
    problems = access_problems(app, client, world)
    assert "GET /api/v1/bots/<int:bot_id>/leak: learner of another course got 200" in problems
    assert "GET /api/v1/bots/<int:bot_id>/leak/<int:conversation_id>: another learner of the same course got 200" \
        in problems
    assert "GET /api/v1/open: 200 without credentials, expected 401" in problems


def test_signed_links_are_bound_to_their_course(app: Flask, client: FlaskClient, world: World) -> None:
    for endpoint, link_endpoint in SIGNED_LINK_ROUTES.items():
        link_rule = next(r for r in app.url_map.iter_rules() if r.endpoint == link_endpoint)
        url = link_rule.build({n: world.ids[n] for n in link_rule.arguments}, append_unknown=False)[1]
        response = client.get(url, headers={"Authorization": f"Bearer {world.token('A', 'teacher')}"})
        assert response.status_code == 200, response.json
        signed = response.json["url"]
        path, _, query = signed.partition("?")
        path = path[path.index(API_PREFIX):]
        assert client.get(f"{path}?{query}").status_code != 403  # the genuine link opens
        other_course = path.replace(f"/bots/{world.bots['A']}/", f"/bots/{world.bots['B']}/")
        assert client.get(f"{other_course}?{query}").status_code in DENIED
        assert client.get(f"{path}?sig=forged").status_code == 403


def test_routes_with_ids_outside_the_api_are_checked_too(app: Flask) -> None:
    """Pages taking ids must get cases here as well: fail until someone adds them (static files excepted)."""
    unchecked = [rule.rule for rule in app.url_map.iter_rules()
                 if not rule.rule.startswith(API_PREFIX) and set(rule.arguments) - {"filename"}]
    assert unchecked == [], "extend tests/test_access_control.py to these routes"
