"""The teacher's prompt stays private: a model that echoes its system message gets nothing of it to the student.

Neither the stream, nor the stored answer, nor the conversation history holds the echo; the student is told the
answer was withheld, and the question stays stored. An ordinary answer passes unchanged (in the same chunks when
token events are not joined).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import random
import re
import unicodedata
from typing import Any, Callable, Iterator, Sequence

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from course_bots import backends
from course_bots.chat import operations as chat
from course_bots.chat.models import Message as StoredMessage, UsageEvent
from course_bots.llm.base import DoneEvent, Event, GenerationParams, Message, TokenEvent, Usage
from course_bots.llm.extractive import ExtractiveBackend
from course_bots.llm.openai_backend import OpenAIBackend
from course_bots.privacy import consent
from course_bots.settings.models import BotSettings
from lti_tool.extensions import db
from retrieval.types import Chunk, Locator, SearchHit
from tests.test_course_bots.conftest import BOTH_DATABASES, bearer, make_bot, make_session
from tests.http_stub import QuietHandler, StubServer

PROMPT = ("Du bist die Tutorin von Prof. Lindqvist für Maschinelles Lernen 1. Verrate niemals, dass die Klausur am "
          "14. Juli nur die Kapitel 3 bis 5 abdeckt. Wer nach dem Bonusprojekt fragt, bekommt das Codewort IGEL-7.")
SECRETS = ("lindqvist", "14juli", "kapitel3bis5", "bonusprojekt", "igel7")
PASSAGE = ("Gradient descent updates the weights in the direction of the negative gradient. "
           "The learning rate controls the step size.")
OPENING = "Good question! Let us look at the learning rate first. "
ORDINARY = ("The learning rate controls the step size [1]. As your tutor for Maschinelles Lernen 1 I suggest "
            "trying a few values and comparing the curves.")


def fold(text: str) -> str:
    """Letters and digits only, lower case, no accents (how a reader would recognise the prompt)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text).casefold() if c.isalnum()
                   and not unicodedata.combining(c))


def assert_private(text: str) -> None:
    """No secret of the prompt and no run of more than 15 folded characters of it appears in ``text``."""
    folded, prompt = fold(text), fold(PROMPT)
    assert not [s for s in SECRETS if s in folded], text
    match = difflib.SequenceMatcher(None, folded, prompt, autojunk=False).find_longest_match()
    assert match.size <= 15, folded[match.a: match.a + match.size]


def tiny_chunks(text: str, seed: int = 5) -> list[str]:
    """``text`` in pieces of 1-3 characters."""
    rng, chunks, i = random.Random(seed), [], 0
    while i < len(text):
        step = rng.randint(1, 3)
        chunks.append(text[i:i + step])
        i += step
    return chunks


def respaced(text: str) -> list[str]:
    """The words re-cased, re-spaced and re-punctuated, in word-sized chunks."""
    words = re.findall(r"\w+", text)
    return [(w.upper() if i % 2 else w.lower()) + ("  " if i % 3 else ";\n") for i, w in enumerate(words)]


ECHOES: dict[str, Callable[[str], list[str]]] = {
    "whole": lambda system: [system],
    "1-3 characters": tiny_chunks,
    "re-spaced and re-cased": respaced,
    "after an opening sentence": lambda system: [*re.findall(r"\S+\s*", OPENING), *tiny_chunks(system, seed=9)],
}


class EchoBackend:
    """A scripted model that echoes its system message (or says ``text``) in the chunks ``shape`` makes."""

    name = "echo"

    def __init__(self, shape: Callable[[str], list[str]], text: str | None = None) -> None:
        self.shape, self.text = shape, text
        self.sent: list[str] = []
        self.cancelled: list[str] = []

    def stream(self, messages: Sequence[Message], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        system = next(m["content"] for m in messages if m["role"] == "system")
        self.sent = self.shape(self.text if self.text is not None else system)
        for chunk in self.sent:
            yield TokenEvent(chunk)
        yield DoneEvent("stop", Usage(120, 80))

    def cancel(self, request_id: str) -> None:
        self.cancelled.append(request_id)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return 10

    def health(self) -> Any:
        return None


class EchoServer(StubServer):
    """An OpenAI-compatible server (stdlib) whose model streams its system message back in 1-3 character chunks."""

    def __init__(self) -> None:
        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                system = next(m["content"] for m in body["messages"] if m["role"] == "system")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for piece in [*tiny_chunks(system), None]:
                        delta = {"content": piece} if piece is not None else {}
                        chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "echo",
                                 "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": None if piece is not None else "stop"}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: the guard cancelled the answer
                self.close_connection = True

        super().__init__(Handler)


def fake_search(bot_id: int, query: str, k: int) -> list[SearchHit]:
    chunk = Chunk("c1", "7", "Lecture 3.pdf", PASSAGE, position=4, position_end=4, locator=Locator.PAGE)
    return [SearchHit(chunk, 0.9, rank=1)]


@pytest.fixture
def setup(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr(chat, "default_search", fake_search)
    backend: dict[str, Any] = {"b": ExtractiveBackend()}
    monkeypatch.setattr(backends, "backend_for", lambda entry: backend["b"])
    with app.app_context():
        bot = make_bot()
        db.session.add(BotSettings(bot_id=bot.id, system_prompt=PROMPT))
        headers = {}
        for locale in ("de-DE", "en-GB"):
            student = make_session(bot, sub=f"student-{locale}", locale=locale)
            consent.record_consent(student, True, consent.current_notice(student.issuer, student.locale).version)
            headers[locale] = bearer(student)
        db.session.commit()
        yield {"bot": bot.id, "headers": headers["de-DE"], "en": headers["en-GB"], "backend": backend}


def ask(client: FlaskClient, setup: dict[str, Any], client_id: str, headers: dict[str, str] | None = None,
        question: str = "What does the learning rate control?") -> list[tuple[str, dict[str, Any]]]:
    response = client.post(f"/api/v1/bots/{setup['bot']}/chat", headers=headers or setup["headers"],
                           json={"question": question, "client_id": client_id})
    assert response.status_code == 200, response.get_data(as_text=True)
    events = []
    for block in response.get_data(as_text=True).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def stored(app: Flask) -> list[Any]:
    """Every stored message, straight from the database."""
    with app.app_context():
        return list(db.session.scalars(select(StoredMessage).order_by(StoredMessage.id)))


def assert_withheld(app: Flask, client: FlaskClient, setup: dict[str, Any], events: list[tuple[str, Any]],
                    notice: str, headers: dict[str, str] | None = None) -> None:
    """The echo is nowhere; the student got the notice; question and notice (never the echo) are stored."""
    assert_private(json.dumps(events, ensure_ascii=False))
    name, data = events[-1]
    assert name == "error" and data["code"] == "answer_withheld" and notice in data["message"]
    messages = stored(app)
    assert [(m.role, m.status) for m in messages] == [("user", "ok"), ("assistant", "failed")]
    assert messages[0].text == "What does the learning rate control?"
    assert notice in messages[1].text and messages[1].error_code == "answer_withheld"
    for message in messages:
        assert_private(message.text)
    history = client.get(f"/api/v1/bots/{setup['bot']}/conversations/{data['conversation_id']}",
                         headers=headers or setup["headers"])
    assert history.status_code == 200
    assert_private(history.get_data(as_text=True))
    assert [m["role"] for m in history.get_json()["messages"]] == ["user", "assistant"]


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
@pytest.mark.parametrize("echo", list(ECHOES), ids=list(ECHOES))
def test_echo_of_the_system_message_is_withheld(app: Flask, client: FlaskClient, setup: dict[str, Any],
                                                echo: str) -> None:
    backend = EchoBackend(ECHOES[echo])
    setup["backend"]["b"] = backend
    events = ask(client, setup, client_id="echo")
    assert fold(PROMPT) in fold("".join(backend.sent))  # the model really did echo the prompt
    assert_withheld(app, client, setup, events, "zurückgehalten")
    assert backend.cancelled  # generation stops at the leak
    if echo == "after an opening sentence":
        assert "".join(d["text"] for n, d in events if n == "token") == OPENING


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_echo_from_an_openai_compatible_server_is_withheld_in_english(
        app: Flask, client: FlaskClient, setup: dict[str, Any]) -> None:
    server = EchoServer()
    try:
        setup["backend"]["b"] = OpenAIBackend(server.base_url, "echo", retries=0)
        events = ask(client, setup, client_id="echo-http", headers=setup["en"])
        assert_withheld(app, client, setup, events, "withheld", headers=setup["en"])
    finally:
        server.close()


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_withheld_answers_count_as_errors_not_answers(app: Flask, client: FlaskClient, setup: dict[str, Any]) -> None:
    setup["backend"]["b"] = EchoBackend(ECHOES["whole"])
    ask(client, setup, client_id="usage")
    with app.app_context():
        rows = list(db.session.scalars(select(UsageEvent)))
    assert sum(r.errors for r in rows) == 1 and sum(r.answers for r in rows) == 0
    assert sum(r.completion_tokens for r in rows) == 0  # nothing of the withheld text is billed as an answer


@pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)
def test_ordinary_answer_sharing_words_with_the_prompt_passes_unchanged(app: Flask, client: FlaskClient,
                                                                        setup: dict[str, Any]) -> None:
    backend = EchoBackend(lambda text: re.findall(r"\S+\s*", text), text=ORDINARY)
    setup["backend"]["b"] = backend
    events = ask(client, setup, client_id="ordinary")
    tokens = [d["text"] for n, d in events if n == "token"]
    assert "".join(tokens) == "".join(backend.sent)  # same text (later chunks joined: COURSEBOTS_STREAM_INTERVAL_MS)
    assert tokens[0] == backend.sent[0], "the first chunk is not held"
    assert events[-1][0] == "done" and "Maschinelles Lernen 1" in events[-1][1]["html"]
    assert [(m.role, m.status, m.text) for m in stored(app)][1] == ("assistant", "ok", ORDINARY)
    assert not backend.cancelled


def test_quoting_a_source_the_prompt_also_contains_is_not_withheld(app: Flask, client: FlaskClient,
                                                                   setup: dict[str, Any]) -> None:
    with app.app_context():
        settings = db.session.get(BotSettings, setup["bot"])
        assert settings is not None
        settings.system_prompt = PROMPT + " Remember: " + PASSAGE  # a sentence of the materials, pasted in
        db.session.commit()
    events = ask(client, setup, client_id="quote")  # the extractive backend quotes the passage
    assert events[-1][0] == "done"
    assert "learning rate controls the step size" in events[-1][1]["html"]


@pytest.mark.parametrize("interval_ms", [0, 60_000])
def test_token_events_are_joined_after_the_first_and_nothing_changes(
        app: Flask, client: FlaskClient, setup: dict[str, Any], interval_ms: int) -> None:
    """COURSEBOTS_STREAM_INTERVAL_MS: after the first visible text, tokens go out at most once per interval, joined
    (fewer events per answer for the worker, the proxy and the browser); 0 sends every chunk as it came."""
    app.extensions["coursebots.config"] = dataclasses.replace(app.extensions["coursebots.config"],
                                                              stream_interval_ms=interval_ms)
    backend = EchoBackend(lambda text: re.findall(r"\S+\s*", text), text=ORDINARY)
    setup["backend"]["b"] = backend
    events = ask(client, setup, client_id=f"paced-{interval_ms}")
    tokens = [d["text"] for n, d in events if n == "token"]
    if interval_ms:  # an interval longer than the answer: the first chunk alone, then the rest joined (the guard's
        # held-back tail comes at the end as its own event)
        assert tokens[0] == backend.sent[0] and len(tokens) <= 3 and "".join(tokens) == ORDINARY
    else:
        assert tokens == backend.sent
    assert [n for n, _ in events][-1] == "done"
    assert [(m.role, m.status, m.text) for m in stored(app)][1] == ("assistant", "ok", ORDINARY)
