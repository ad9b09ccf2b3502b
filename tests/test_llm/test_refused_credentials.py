"""A server that refuses the tool's API key (401/403) is unavailable: the breaker counts it, the fallback answers."""
from __future__ import annotations

import json
import logging
from typing import Any, Iterator

import pytest

from course_bots.llm.base import ErrorEvent, GenerationParams, Passage, StatusEvent, TokenEvent
from course_bots.llm.circuit import CircuitBreaker
from course_bots.llm.extractive import FallbackBackend
from course_bots.llm.openai_backend import OpenAIBackend
from course_bots.llm.server import BackgroundServer, create_app
from tests.http_stub import QuietHandler, StubServer

ASK = [{"role": "user", "content": "Wann ist die Klausur?"}]
KEY = "sk-secret-key-never-logged"


class RefusingServer(StubServer):
    """Answers every request with ``status`` and our server's ``unauthorised`` error body; counts the requests."""

    def __init__(self, status: int = 401) -> None:
        self.requests = 0
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                body = json.dumps({"error": {"code": "unauthorised", "type": "unauthorised",
                                             "message": "A valid API key is required."}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

        super().__init__(Handler)


@pytest.fixture(params=[401, 403], ids=["401-unauthorised", "403-forbidden"])
def refusing(request: pytest.FixtureRequest) -> Iterator[RefusingServer]:
    server = RefusingServer(request.param)
    yield server
    server.close()


def test_a_refused_key_is_unavailable_counted_by_the_breaker_and_logged_once(
        refusing: RefusingServer, caplog: pytest.LogCaptureFixture) -> None:
    backend = OpenAIBackend(refusing.base_url, "m", KEY, retries=2, backoff_s=0.0,
                            breaker=CircuitBreaker(threshold=2))
    try:
        with caplog.at_level(logging.WARNING, logger="course_bots.llm.openai_backend"):
            first = list(backend.stream(ASK, GenerationParams()))
        assert first == [ErrorEvent("unavailable", "The language model server cannot be reached.")]
        assert "credential" not in first[0].message and "key" not in first[0].message, "no internals for students"
        assert refusing.requests == 1, "a refused key is not retried: it stays wrong until an admin fixes it"
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "refused this tool's credentials" in warnings[0].getMessage()
        assert KEY not in caplog.text
        assert backend.breaker.state == "closed"  # one failure of two
        list(backend.stream(ASK, GenerationParams()))
        assert backend.breaker.state == "open", "the breaker records each refusal as a server failure"
        health = backend.health()  # what /readyz shows the admin
        assert not health.ok and health.detail == "circuit open (credentials refused)"
        assert list(backend.stream(ASK, GenerationParams()))[0].code == "unavailable"
        assert refusing.requests == 2, "while the circuit is open the server is not called"
    finally:
        backend.close()


def test_the_fallback_answers_from_the_materials_while_the_key_is_refused(refusing: RefusingServer) -> None:
    backend = OpenAIBackend(refusing.base_url, "m", KEY, retries=0)
    params = GenerationParams(language="de", sources=(Passage(1, "Organisation.pdf, Seite 1",
                                                              "Die Klausur schreiben wir im Hörsaal A."),))
    try:
        events = list(FallbackBackend(backend).stream(ASK, params))
    finally:
        backend.close()
    assert events[0] == StatusEvent("fallback")
    assert "Hörsaal A" in "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert not any(isinstance(e, ErrorEvent) for e in events)


def test_another_server_answers_when_one_refuses_the_key(refusing: RefusingServer,
                                                         model_server: Any) -> None:
    backend = OpenAIBackend([refusing.base_url, model_server.base_url], "tiny", "unused", retries=0)
    try:
        for _ in range(2):  # whichever server is picked first, the answer comes from the one that accepts
            events = list(backend.stream(ASK, GenerationParams(max_new_tokens=4)))
            assert not any(isinstance(e, ErrorEvent) for e in events), events
        assert backend.health().detail == "circuit closed (credentials refused), closed"
    finally:
        backend.close()


def test_our_model_server_with_another_key_reads_as_unavailable() -> None:
    class NoEngine:
        """Never reached: the key is checked first."""

        def submit(self, *args: Any) -> None:
            raise AssertionError("a request without the right key reached the engine")

        def cancel(self, rid: str) -> None:
            """Nothing to cancel."""

    server = BackgroundServer(create_app(NoEngine(), "tiny", api_key="right")).start()  # type: ignore[arg-type]
    backend = OpenAIBackend(f"http://{server.host}:{server.port}/v1", "tiny", "wrong", retries=0)
    try:
        assert [e.code for e in backend.stream(ASK, GenerationParams()) if isinstance(e, ErrorEvent)] == [
            "unavailable"]
        assert backend.breaker._failures == 1
    finally:
        backend.close()
        server.stop()
