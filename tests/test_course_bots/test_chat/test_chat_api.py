"""The streamed chat API: events in order, stored once per client id, kept on failure, sanitized, own bot only."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterator, Sequence

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

import course_bots.privacy
from course_bots import backends, i18n
from course_bots.chat import conversations, operations as chat
from course_bots.chat.models import ChatSession, Message as StoredMessage, UsageEvent
from course_bots.llm.base import (DoneEvent, ErrorEvent, Event, GenerationParams, Message as PromptMessage,
                                  StatusEvent, TokenEvent)
from course_bots.llm.extractive import ExtractiveBackend
from course_bots.materials import course_index
from course_bots.models import CourseBot
from course_bots.privacy import consent
from course_bots.quotas.models import BotQuota
from lti_tool.extensions import db
from retrieval.types import Chunk, Locator, SearchHit
from tests.test_course_bots.conftest import BOTH_DATABASES, bearer, make_bot, make_session

PASSAGE = ("Gradient descent updates the weights in the direction of the negative gradient. "
           "The learning rate controls the step size.")


def fake_search(bot_id: int, query: str, k: int) -> list[SearchHit]:
    chunk = Chunk("c1", "7", "Lecture 3.pdf", PASSAGE, position=4, position_end=4, locator=Locator.PAGE)
    return [SearchHit(chunk, 0.9, rank=1)]


class ScriptedBackend:
    """A backend that replays scripted events (a fake OpenAI-compatible stream)."""

    name = "scripted"

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)
        self.calls = 0

    def stream(self, messages: Sequence[PromptMessage], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        self.calls += 1
        yield from self.events

    def cancel(self, request_id: str) -> None:
        pass

    def count_tokens(self, messages: Sequence[PromptMessage]) -> int:
        return 10

    def health(self) -> Any:
        return None


def parse(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
def setup(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr(chat, "default_search", fake_search)
    backend: dict[str, Any] = {"b": ExtractiveBackend()}
    monkeypatch.setattr(backends, "backend_for", lambda entry: backend["b"])
    with app.app_context():
        bot = make_bot()
        student = make_session(bot)
        consent.record_consent(student, True, consent.current_notice(student.issuer, student.locale).version)
        db.session.commit()
        yield {"bot": bot.id, "headers": bearer(student), "backend": backend,
               "other": bearer(make_session(make_bot("course-2")))}


def ask(client: FlaskClient, setup: dict[str, Any], question: str = "What does the learning rate control?",
        client_id: str = "q-1", conversation_id: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    response = client.post(f"/api/v1/bots/{setup['bot']}/chat", headers=setup["headers"],
                           json={"question": question, "client_id": client_id, "conversation_id": conversation_id})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    return parse(response.get_data(as_text=True))


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_answer_streams_tokens_then_done_with_citation(client: FlaskClient, setup: dict[str, Any]) -> None:
    events = ask(client, setup)
    names = [name for name, _ in events]
    assert names[0] == "status" and names[-1] == "done"
    assert names.count("token") >= 3
    done = events[-1][1]
    assert done["citations"][0]["document_title"] == "Lecture 3.pdf"
    assert done["citations"][0]["position"] == 4
    assert 'class="cb-cite"' in done["html"] and "<h3>Lecture 3.pdf" in done["html"]  # the file as a heading
    listed = client.get(f"/api/v1/bots/{setup['bot']}/conversations", headers=setup["headers"]).get_json()
    assert len(listed["conversations"]) == 1
    conversation = client.get(f"/api/v1/bots/{setup['bot']}/conversations/{done['conversation_id']}",
                              headers=setup["headers"]).get_json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_retry_with_same_client_id_stores_once(client: FlaskClient, setup: dict[str, Any]) -> None:
    first = ask(client, setup, client_id="same")
    second = ask(client, setup, client_id="same")
    assert [n for n, _ in second] == ["done"]
    assert second[-1][1]["message_id"] == first[-1][1]["message_id"]
    conversation = client.get(f"/api/v1/bots/{setup['bot']}/conversations/{first[-1][1]['conversation_id']}",
                              headers=setup["headers"]).get_json()
    assert len(conversation["messages"]) == 2


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_question_kept_when_answer_fails_and_retry_answers(client: FlaskClient, setup: dict[str, Any]) -> None:
    setup["backend"]["b"] = ScriptedBackend([StatusEvent("queued", 3), TokenEvent("Hal"),
                                             ErrorEvent("unavailable", "down")])
    events = ask(client, setup, client_id="fails")
    assert ("status", {"state": "queued", "position": 3}) in events
    assert events[-1][0] == "error" and events[-1][1]["code"] == "unavailable"
    conversation_id = events[-1][1]["conversation_id"]
    messages = client.get(f"/api/v1/bots/{setup['bot']}/conversations/{conversation_id}",
                          headers=setup["headers"]).get_json()["messages"]
    assert messages[0]["role"] == "user" and messages[1]["status"] == "failed"
    setup["backend"]["b"] = ScriptedBackend([TokenEvent("The step size [1]."), DoneEvent("stop")])
    retry = ask(client, setup, client_id="fails")
    assert retry[-1][0] == "done"
    messages = client.get(f"/api/v1/bots/{setup['bot']}/conversations/{conversation_id}",
                          headers=setup["headers"]).get_json()["messages"]
    assert len(messages) == 2 and messages[1]["status"] == "ok"


def test_database_lost_mid_answer_says_so_and_keeps_the_question(
        client: FlaskClient, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    setup["backend"]["b"] = ScriptedBackend([TokenEvent("The step size [1]."), DoneEvent("stop")])

    def connection_gone(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT INTO message ...", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(conversations, "record_answer", connection_gone)
    events = ask(client, setup, client_id="db-gone")
    assert events[-1][0] == "error" and events[-1][1]["code"] == "database_unavailable" and events[-1][1]["retry"]
    assert "ask again" in events[-1][1]["message"] and "INSERT" not in events[-1][1]["message"]
    monkeypatch.undo()
    conversation_id = events[-1][1]["conversation_id"]
    messages = client.get(f"/api/v1/bots/{setup['bot']}/conversations/{conversation_id}",
                          headers=setup["headers"]).get_json()["messages"]
    assert messages[0]["role"] == "user", "the question was stored before the answer and is kept"
    setup["backend"]["b"] = ScriptedBackend([TokenEvent("The step size [1]."), DoneEvent("stop")])
    assert ask(client, setup, client_id="db-gone")[-1][0] == "done", "asking again answers it"


def test_answers_record_who_wrote_them(app: Flask, client: FlaskClient, setup: dict[str, Any]) -> None:
    setup["backend"]["b"] = ScriptedBackend([TokenEvent("The step size [1]."), DoneEvent("stop")])
    ask(client, setup, client_id="kind-model")
    setup["backend"]["b"] = ScriptedBackend([StatusEvent("fallback"), TokenEvent("Quoted [1]."), DoneEvent("stop")])
    ask(client, setup, client_id="kind-fallback")
    with app.app_context():
        kinds = [m.answer_kind for m in db.session.query(StoredMessage).filter_by(role="assistant")
                 .order_by(StoredMessage.id)]
    # The default entry of this test app is extractive; the fallback's answer says so whatever the entry is.
    assert kinds == ["extractive", "fallback"]


def test_model_html_never_reaches_the_page_unsanitized(client: FlaskClient, setup: dict[str, Any]) -> None:
    evil = '<img src=x onerror=alert(1)> [x](javascript:alert(1)) <script>alert(2)</script> [1]'
    setup["backend"]["b"] = ScriptedBackend([TokenEvent(evil), DoneEvent("stop")])
    events = ask(client, setup, client_id="xss")
    html = events[-1][1]["html"]
    assert "<img" not in html and "<script" not in html and "href=\"javascript" not in html
    tokens = [data["text"] for name, data in events if name == "token"]
    assert tokens == [evil]  # tokens are text; the page inserts them with textContent


def test_below_threshold_the_bot_says_materials_do_not_cover_it(client: FlaskClient, setup: dict[str, Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat, "default_search", lambda *a: [])
    scripted = ScriptedBackend([TokenEvent("guess"), DoneEvent("stop")])
    setup["backend"]["b"] = scripted
    events = ask(client, setup, question="Wer gewann die Fußball-WM 1954?", client_id="nc")
    assert scripted.calls == 0
    assert "Kursmaterialien" in events[-1][1]["html"]


def test_other_bot_and_missing_token_are_rejected(client: FlaskClient, setup: dict[str, Any]) -> None:
    url = f"/api/v1/bots/{setup['bot']}/chat"
    body = {"question": "x", "client_id": "a"}
    assert client.post(url, json=body).status_code == 401
    response = client.post(url, json=body, headers=setup["other"])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/bots/{setup['bot']}/conversations", headers=setup["other"]).status_code == 403


def test_invalid_requests_use_the_error_shape(client: FlaskClient, setup: dict[str, Any]) -> None:
    url = f"/api/v1/bots/{setup['bot']}/chat"
    response = client.post(url, json={"question": "", "client_id": "a"}, headers=setup["headers"])
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_question"
    response = client.post(url, json={"question": "hi", "client_id": "bad id!"}, headers=setup["headers"])
    assert response.get_json()["error"]["code"] == "invalid_client_id"


def test_quota_hook_refuses_with_its_message(client: FlaskClient, setup: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with client.application.app_context():  # the teacher allows one question a day (tests/.../test_quota*.py)
        db.session.add(BotQuota(bot_id=setup["bot"], role="learner", questions_per_day=1))
        db.session.commit()
    ask(client, setup, client_id="q-first")
    response = client.post(f"/api/v1/bots/{setup['bot']}/chat", headers=setup["headers"],
                           json={"question": "hi", "client_id": "q"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    error = response.get_json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["message"].startswith(i18n.catalogue("de")["quota_questions_exceeded"].split("{time}")[0]
                                       .format(limit=1))


def test_feedback_delete_one_and_all(client: FlaskClient, setup: dict[str, Any]) -> None:
    done = ask(client, setup, client_id="f1")[-1][1]
    base = f"/api/v1/bots/{setup['bot']}"
    response = client.post(f"{base}/messages/{done['message_id']}/feedback", headers=setup["headers"],
                           json={"value": "down", "comment": "<script>alert(1)</script>"})
    assert response.status_code == 200
    cites = client.get(f"{base}/messages/{done['message_id']}/citations", headers=setup["headers"]).get_json()
    assert cites["citations"][0]["quote"].startswith("Gradient descent")
    ask(client, setup, client_id="f2")
    assert client.delete(f"{base}/conversations/{done['conversation_id']}",
                         headers=setup["headers"]).status_code == 204
    assert client.delete(f"{base}/conversations", headers=setup["headers"]).get_json() == {"deleted": 1}
    assert client.get(f"{base}/conversations", headers=setup["headers"]).get_json()["conversations"] == []


def test_without_consent_the_chat_refuses(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        bot = make_bot("course-9")
        headers = bearer(make_session(bot, sub="new-student"))
    response = client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers, json={"question": "hi", "client_id": "a"})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "consent_required"


def test_consent_check_fails_closed_when_the_consent_module_cannot_be_imported(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context():
        bot = make_bot("course-10")
        headers = bearer(make_session(bot, sub="new-student"))
    monkeypatch.setitem(sys.modules, "course_bots.privacy.consent", None)  # any import of it now fails
    monkeypatch.delattr(course_bots.privacy, "consent")
    response = client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers, json={"question": "hi", "client_id": "a"})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "consent_required"


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
@pytest.mark.parametrize("body", [{"conversation_id": True}, {"conversation_id": 2 ** 64}, {"conversation_id": "1"},
                                  {"question": ["hi"]}, {"question": "hi\x00"}, {"client_id": 7}])
def test_malformed_questions_are_refused_with_400(client: FlaskClient, setup: dict[str, Any],
                                                  body: dict[str, Any]) -> None:
    sent = {"question": "What is it?", "client_id": "q-9", **body}
    response = client.post(f"/api/v1/bots/{setup['bot']}/chat", headers=setup["headers"], json=sent)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] in ("invalid_question", "invalid_client_id", "invalid_conversation")


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_personal_data_is_scrubbed_before_the_question_is_searched_or_sent_to_a_model(
        client: FlaskClient, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[str] = []
    sent: list[str] = []

    def recording_search(bot_id: int, query: str, k: int) -> list[SearchHit]:
        searched.append(query)
        return fake_search(bot_id, query, k)

    class RecordingBackend(ScriptedBackend):
        def stream(self, messages: Sequence[PromptMessage], params: GenerationParams,
                   request_id: str | None = None) -> Iterator[Event]:
            sent.extend(str(m["content"]) for m in messages)
            return super().stream(messages, params, request_id)

    monkeypatch.setattr(chat, "default_search", recording_search)
    setup["backend"]["b"] = RecordingBackend([TokenEvent("It controls the step size."), DoneEvent("stop")])
    question = ("Hallo! Was steuert die Lernrate laut § 34 am 12.02.2027 in Raum H4-112? "
                "Meine Mail ist anna.mueller@uni-example.de, Tel. 0521 106-4711.")
    events = ask(client, setup, question=question, client_id="pii-1")
    assert events[-1][0] == "done"
    assert len(searched) == 1 and "anna.mueller" not in searched[0] and "4711" not in searched[0]
    assert "§ 34" in searched[0] and "12.02.2027" in searched[0] and "H4-112" in searched[0]
    assert sent and not any("anna.mueller" in text or "106-4711" in text for text in sent)


def test_the_first_question_after_a_start_says_the_assistant_gets_ready(
        client: FlaskClient, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(course_index, "_search_ready", False)  # as in a cold, unwarmed worker
    events = ask(client, setup, client_id="first")
    states = [data.get("state") for name, data in events if name == "status"]
    assert states[:2] == ["started", "preparing"]  # before the search loads the model, before any token
    assert [name for name, _ in events].index("token") > 1
    later = ask(client, setup, question="What does gradient descent update?", client_id="second")
    assert "preparing" not in [data.get("state") for name, data in later if name == "status"]


def test_citations_speak_the_page_language_and_keep_the_passage_lines(
        client: FlaskClient, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    code = "Gradient descent in code:\nfor (int i = 0; i < n; i++) {\nw = w - rate * grad(w);\n}"

    def search(bot_id: int, query: str, k: int) -> list[SearchHit]:
        chunk = Chunk("c2", "material:7", "Lecture 3.pdf", code, position=44, position_end=45,
                      locator=Locator.PAGE)
        return [SearchHit(chunk, 0.9, rank=1)]

    monkeypatch.setattr(chat, "default_search", search)
    setup["backend"]["b"] = ScriptedBackend([TokenEvent("It loops over the weights [1]."), DoneEvent("stop")])
    done = ask(client, setup, question="How is gradient descent written in code?")[-1][1]
    citation = done["citations"][0]
    assert citation["label"] == "Lecture 3.pdf, Seiten 44–45"  # an English question on a German page
    assert (citation["position"], citation["position_end"]) == (44, 45)  # the panel names the same pages
    assert citation["quote"].startswith("Gradient descent in code:\nfor (int i = 0; i < n; i++) {\n")
    assert "<pre><code>for (int i = 0; i &lt; n; i++) {\n    w = w - rate * grad(w);\n}" in citation["quote_html"]
    panel = client.get(f"/api/v1/bots/{setup['bot']}/messages/{done['message_id']}/citations",
                       headers=setup["headers"]).get_json()["citations"][0]
    assert panel["quote_html"] == citation["quote_html"]


def test_leaving_mid_answer_stores_it_once_and_asking_again_answers_that_question(
        app: Flask, client: FlaskClient, setup: dict[str, Any]) -> None:
    setup["backend"]["b"] = ScriptedBackend([TokenEvent("The "), TokenEvent("step "), TokenEvent("size [1]."),
                                             DoneEvent("stop")])
    with app.app_context():
        bot = db.session.get(CourseBot, setup["bot"])
        student = make_session(bot)
        settings = chat.settings_for(bot.id)
        asked = chat.record(student, chat.Question(bot.id, "What is the step size?", "left-1"), settings)
        db.session.commit()
        stream = chat.answer(student, asked)
        assert next(stream)[0] == "status"
        names = [next(stream)[0] for _ in range(2)]
        assert "token" in names or "status" in names
        stream.close()  # the page was closed: the server sees GeneratorExit
        answer = db.session.query(StoredMessage).filter_by(reply_to_id=asked.question_id).one()
        assert (answer.status, answer.error_code) == ("failed", "cancelled")
        assert sum(u.errors or 0 for u in db.session.query(UsageEvent).all()) == 0  # leaving is no error
    listed = client.get(f"/api/v1/bots/{setup['bot']}/conversations", headers=setup["headers"]).get_json()
    assert len(listed["conversations"]) == 1
    messages = client.get(f"/api/v1/bots/{setup['bot']}/conversations/{listed['conversations'][0]['id']}",
                          headers=setup["headers"]).get_json()["messages"]
    assert messages[0]["client_id"] == "left-1" and messages[1]["error_code"] == "cancelled"
    again = ask(client, setup, question="What is the step size?", client_id="typed-again")
    assert again[-1][0] == "done"
    with app.app_context():
        assert db.session.query(ChatSession).count() == 1
        assert db.session.query(StoredMessage).filter_by(role="user").count() == 1
        assert db.session.query(StoredMessage).filter_by(reply_to_id=asked.question_id).one().status == "ok"


def test_asking_again_after_an_answer_or_with_other_words_is_a_new_question(
        app: Flask, client: FlaskClient, setup: dict[str, Any]) -> None:
    first = ask(client, setup, question="What is the step size?", client_id="a-1")
    again = ask(client, setup, question="What is the step size?", client_id="a-2",
                conversation_id=first[-1][1]["conversation_id"])
    other = ask(client, setup, question="What does the learning rate control?", client_id="a-3")
    assert again[-1][0] == other[-1][0] == "done"
    assert again[-1][1]["message_id"] != first[-1][1]["message_id"]  # answered: asking again is asking again
    with app.app_context():
        assert db.session.query(StoredMessage).filter_by(role="user").count() == 3
