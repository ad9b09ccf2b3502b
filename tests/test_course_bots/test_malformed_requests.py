"""Every route, walked with hostile input (bad ids, out-of-range numbers, wrong JSON types, bad tokens, oversize
bodies) by every role: never a 5xx, API errors in the one error shape, and oversize bodies refused unread."""
from __future__ import annotations

import io
import json
import re
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from course_bots.chat import conversations as conv
from course_bots.materials import operations as materials
from course_bots.schemas import REQUEST_BODIES
from lti_tool.extensions import db
from lti_tool.security import body_limit
from .conftest import BOTH_DATABASES, bearer, make_bot, make_session

HUGE = 10 ** 30
ID_VARIANTS = ("0", str(2 ** 31 - 1), str(2 ** 31), str(2 ** 63 - 1), str(2 ** 63), str(HUGE), "-1", "abc", "1.5",
               "%00")
FIELDS = sorted({name for model in REQUEST_BODIES.values() for name in model.model_fields})
WRONG_VALUES: tuple[Any, ...] = (True, HUGE, -HUGE, 2 ** 63, -5, 1.5, "x", "\x00", "", None, [], {}, [[["x"]]],
                                 {"a": {"b": None}})
QUERIES = ("limit=abc", "limit=-5", f"limit={HUGE}", "limit=1e3", "offset=-1", f"offset={2 ** 63}", "page=abc",
           f"page={HUGE}", "since=garbage", "until=0001-01-01T00:00:00-14:00", "since=9999-12-31T23:59:59-14:00",
           "role=%00", "role=nobody", "only=everything", "format=xml", "sig=", "sig=" + "A" * 2000,
           "include_preview=%ff", "iss=x&login_hint=%00&target_link_uri=javascript:alert(1)", "state=" + "s" * 3000)
FORM = {"iss": "https://unknown.example", "login_hint": "\x00", "id_token": "not.a.jwt", "state": "\x00" * 3,
        "lti_message_hint": "x" * 5000, "client_id": "[]"}


class Unreadable(io.RawIOBase):
    """A request body that must never be read (an oversize body is refused by its Content-Length)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("an oversize body was read")


class Counting(io.RawIOBase):
    """A chunked body of ``size`` bytes that counts what the server read."""

    def __init__(self, size: int) -> None:
        self.left, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left, 8192)
        buffer[:n] = b"{" * n
        self.left -= n
        self.read_bytes += n
        return n


def declared(stream: io.RawIOBase, length: int) -> dict[str, Any]:
    """WSGI environ entries for a body that claims ``length`` bytes."""
    return {"wsgi.input": stream, "CONTENT_LENGTH": str(length)}


def json_bodies() -> Iterator[tuple[str, bytes]]:
    """Bodies of every wrong shape: not objects, deep nesting, broken JSON, and objects with every field wrong."""
    for name, raw in (("array", b"[]"), ("string", b'"x"'), ("null", b"null"), ("number", b"1e999"),
                      ("true", b"true"), ("broken", b'{"question": '), ("deep", b"[" * 50000),
                      ("deep-object", b'{"a":' * 20000), ("nul", b'{"question": "\\u0000", "code": "\\u0000"}'),
                      ("latin1", b'{"question": "\xff\xfe"}')):
        yield name, raw
    for value in WRONG_VALUES:
        yield f"fields={value!r}"[:40], json.dumps({field: value for field in FIELDS}).encode()


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    """A course with a conversation, an answer and an FAQ entry, and headers for every kind of caller."""
    with app.app_context():
        bot = make_bot("course-walk")
        student = make_session(bot)
        question = conv.record_question(student, None, "c-1", "Was ist ein Gradient?")
        answer = conv.record_answer(student, question.id, "Die Ableitung.")
        faq = materials.create_faq(bot.id, "Wann ist die Klausur?", "Im Februar.")
        db.session.commit()
        ids = {"bot_id": bot.id, "conversation_id": question.session_id, "message_id": answer.id,
               "faq_id": faq.id, "material_id": 1, "number": 1, "question_id": 1}
        callers = {
            "anonymous": {}, "not-bearer": {"Authorization": "Basic eDp5"},
            "forged": {"Authorization": "Bearer " + "A" * 300}, "empty": {"Authorization": "Bearer "},
            "student": bearer(student), "preview": bearer(make_session(bot, sub="t", roles=("instructor",),
                                                                       preview=True)),
            "teacher": bearer(make_session(bot, sub="teacher", roles=("instructor",))),
            "admin": bearer(make_session(bot, sub="admin", roles=("instructor", "administrator")))}
        return {"ids": ids, "callers": callers}


def routes(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) of the app except static files."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        found += [(rule, method) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    assert len(found) > 50
    return found


def fill(rule: Rule, ids: dict[str, Any], override: str | None = None) -> str:
    """The rule's path with its ids (or ``override`` in every id)."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: override or str(ids[m.group(1)]), rule.rule)


def check(response: Any, what: str, failures: list[str]) -> None:
    """No 5xx; an API error has the one error shape."""
    if response.status_code >= 500:
        failures.append(f"{what} -> {response.status_code} {response.get_data(as_text=True)[:200]}")
    elif response.status_code >= 400 and what.split(" ")[1].startswith("/api/"):
        error = (response.get_json(silent=True) or {}).get("error", {})
        if not (isinstance(error, dict) and error.get("code") and error.get("message")):
            failures.append(f"{what} -> {response.status_code} without the API error shape")


def walk_all(client: FlaskClient, app: Flask, world: dict[str, Any], failures: list[str]) -> None:
    """Send every hostile variant to every route."""
    ids, callers = world["ids"], world["callers"]
    teacher = callers["teacher"]
    for rule, method in routes(app):
        if rule.arguments:
            for bad in ID_VARIANTS:
                path = fill(rule, ids, bad)
                check(client.open(path, method=method, headers=teacher), f"{method} {path}", failures)
        path = fill(rule, ids)
        for caller, headers in callers.items():
            for name, raw in json_bodies():
                response = client.open(path, method=method, headers=headers, data=raw,
                                       content_type="application/json")
                check(response, f"{method} {path} {caller} body={name}", failures)
            check(client.open(path, method=method, headers=headers, data=FORM), f"{method} {path} {caller} form",
                  failures)
        for caller in ("student", "teacher", "admin"):
            for query in QUERIES:
                check(client.open(f"{path}?{query}", method=method, headers=callers[caller]),
                      f"{method} {path}?{query} {caller}", failures)


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_no_route_answers_5xx_to_hostile_input(app: Flask, world: dict[str, Any]) -> None:
    failures: list[str] = []
    walk_all(app.test_client(), app, world, failures)
    assert failures == []


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_oversize_bodies_are_refused_unread_on_every_route(app: Flask, world: dict[str, Any]) -> None:
    client, failures = app.test_client(), []
    for rule, method in routes(app):
        with app.test_request_context():
            limit, _ = body_limit(app, rule.endpoint)
        path = fill(rule, world["ids"])
        for caller in ("teacher", "admin", "anonymous"):
            response = client.open(path, method=method, headers=world["callers"][caller],
                                   content_type="application/json", environ_overrides=declared(Unreadable(), limit + 1))
            if response.status_code != 413:
                failures.append(f"{method} {path} {caller}: {response.status_code}")
            elif path.startswith("/api/") and response.get_json()["error"]["code"] != "too_large":
                failures.append(f"{method} {path} {caller}: {response.get_json()}")
    assert failures == []


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_chunked_bodies_are_cut_at_the_route_limit(app: Flask, world: dict[str, Any]) -> None:
    client, failures = app.test_client(), []
    for rule, method in routes(app):
        if method not in ("POST", "PUT", "PATCH", "DELETE") or rule.endpoint == "api_materials.upload":
            continue
        with app.test_request_context():
            limit, _ = body_limit(app, rule.endpoint)
        path = fill(rule, world["ids"])
        body = Counting(10 * limit)
        response = client.open(path, method=method, headers=world["callers"]["admin"], content_type="application/json",
                               environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True,
                                                  "HTTP_TRANSFER_ENCODING": "chunked"})
        if response.status_code >= 500 or body.read_bytes > limit + 8192:
            failures.append(f"{method} {path}: {response.status_code}, read {body.read_bytes} of limit {limit}")
    assert failures == []


def test_a_hundred_megabyte_json_body_and_junk_consent_are_refused(app: Flask, world: dict[str, Any]) -> None:
    client = app.test_client()
    headers = world["callers"]["student"]
    big = client.post("/api/v1/consent", headers=headers, content_type="application/json",
                      environ_overrides=declared(Unreadable(), 100 * 10 ** 6))
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "too_large"
    junk = json.dumps({"accepted": True, "version": 0, "junk": "x" * 10 ** 7})
    refused = client.post("/api/v1/consent", headers=headers, data=junk, content_type="application/json")
    assert refused.status_code == 413
    assert client.get("/api/v1/consent", headers=headers).get_json()["required"] is True


def test_uploads_are_limited_to_their_documented_size(make_app: Any, tmp_path: Any) -> None:
    from flask_migrate import upgrade

    app = make_app(max_upload_mb=1)
    with app.app_context():
        upgrade()
        bot = make_bot("course-upload")
        teacher = bearer(make_session(bot, sub="teacher", roles=("instructor",)))
    client = app.test_client()
    url = f"/api/v1/bots/{bot.id}/materials"
    unread = client.post(url, headers=teacher, content_type="multipart/form-data; boundary=x",
                         environ_overrides=declared(Unreadable(), 21 * 10 ** 6 + 1))
    assert unread.status_code == 413
    assert unread.get_json()["error"]["message"] == "Upload at most 20 files of at most 1 MB each at once."
    one_file = client.post(url, headers=teacher, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"a" * (10 ** 6 + 1)), "big.txt")})
    assert one_file.status_code == 413
    assert "the limit is 1 MB" in one_file.get_json()["error"]["message"]
    fits = client.post(url, headers=teacher, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(b"word " * (10 ** 6 // 5)), "fits.txt")})
    assert fits.status_code in (200, 201), fits.get_json()
