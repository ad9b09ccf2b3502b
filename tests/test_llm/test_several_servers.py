"""One model on several OpenAI-compatible servers: least busy first, failover, honest queue positions."""
from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Iterator

import pytest

from course_bots.llm.base import DoneEvent, ErrorEvent, GenerationParams, StatusEvent, TokenEvent, collect
from course_bots.llm.catalogue import CatalogueError, default_entry, parse_catalogue
from course_bots.llm.circuit import CircuitBreaker
from course_bots.llm.cli_support import backend_for_entry
from course_bots.llm.openai_backend import OpenAIBackend
from tests.http_stub import StubServer

ASK = [{"role": "user", "content": "What is osmosis?"}]


class ScriptedServer(StubServer):
    """A little OpenAI-compatible streaming server on 127.0.0.1 that answers with its own name."""

    def __init__(self, name: str) -> None:
        self.name, self.requests = name, 0
        self.hold: threading.Event | None = None  # answers wait for this when set
        self.queued_at: int | None = None  # reports this queue position before answering
        self.busy_at: int | None = None  # answers 429 busy with this position
        self.cut = False  # closes the stream after the first word, as a server killed mid-answer
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client closed the stream (a cancelled answer)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.busy_at is not None:
                    data = json.dumps({"error": {"code": "busy", "position": outer.busy_at,
                                                 "message": f"{outer.name} is busy"}}).encode()
                    self.send_response(429)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                if outer.queued_at is not None:
                    status = {"state": "queued", "position": outer.queued_at}
                    self._send({"choices": [], "coursebots_status": status})
                self._send({"choices": [{"index": 0, "delta": {"content": "from "}, "finish_reason": None}]})
                if outer.cut:
                    self.close_connection = True
                    return
                if outer.hold is not None:
                    outer.hold.wait(30)
                self._send({"choices": [{"index": 0, "delta": {"content": outer.name}, "finish_reason": "stop"}]})
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _send(self, chunk: dict[str, Any]) -> None:
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", **chunk}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

        super().__init__(Handler)


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    """Two scripted servers, A and B."""
    a, b = ScriptedServer("A"), ScriptedServer("B")
    yield a, b
    for server in (a, b):
        if server.hold is not None:
            server.hold.set()
        try:
            server.close()
        except OSError:
            pass


def answer(backend: OpenAIBackend) -> str:
    """One whole answer's text."""
    return collect(backend.stream(ASK, GenerationParams(max_new_tokens=8))).text


Pair = tuple[ScriptedServer, ScriptedServer]


def test_equal_load_alternates_and_a_busy_server_gets_no_new_request(servers: Pair) -> None:
    a, b = servers
    backend = OpenAIBackend([a.base_url, b.base_url], "m")
    assert sorted(answer(backend) for _ in range(4)) == ["from A", "from A", "from B", "from B"]
    a.hold = b.hold = threading.Event()
    first: Any = backend.stream(ASK, GenerationParams())
    assert next(first) == TokenEvent("from ")  # one answer is streaming from one server ...
    streaming_on = a if a.requests == 3 else b
    other = b if streaming_on is a else a
    a.hold = b.hold = None
    assert answer(backend) == f"from {other.name}"  # ... so the next ones go to the other, idle one
    assert answer(backend) == f"from {other.name}"
    assert backend.health().active == 1
    assert streaming_on.requests == 3
    first.close()
    backend.close()


def test_a_dead_server_is_skipped_and_its_circuit_opens(servers: tuple[ScriptedServer, ScriptedServer]) -> None:
    a, b = servers
    a.close()
    backend = OpenAIBackend([a.base_url, b.base_url], "m", retries=0, breaker=CircuitBreaker(2, 60))
    assert [answer(backend) for _ in range(4)] == ["from B"] * 4, "nobody sees the dead server"
    states = {server.base_url: server.breaker.state for server in backend.servers}
    assert states == {a.base_url: "open", b.base_url: "closed"}
    health = backend.health()
    assert health.ok and health.detail == "circuit open, closed"
    b.close()
    events = list(backend.stream(ASK, GenerationParams()))
    assert events == [ErrorEvent("unavailable", "The language model server cannot be reached.")]
    backend.close()


def test_queue_position_is_the_chosen_servers_own(servers: tuple[ScriptedServer, ScriptedServer]) -> None:
    a, b = servers
    a.queued_at, b.queued_at = 3, 7
    backend = OpenAIBackend([a.base_url, b.base_url], "m")
    for _ in range(2):
        events = list(backend.stream(ASK, GenerationParams()))
        text = "".join(e.text for e in events if isinstance(e, TokenEvent))
        status = next(e for e in events if isinstance(e, StatusEvent))
        assert status == StatusEvent("queued", 3 if text == "from A" else 7)
        assert isinstance(events[-1], DoneEvent)
    backend.close()


def test_a_full_server_hands_the_request_to_another(servers: tuple[ScriptedServer, ScriptedServer]) -> None:
    a, b = servers
    a.busy_at = 4
    backend = OpenAIBackend([a.base_url, b.base_url], "m")
    assert [answer(backend) for _ in range(3)] == ["from B"] * 3
    b.busy_at = 2
    events = list(backend.stream(ASK, GenerationParams()))
    assert events == [ErrorEvent("busy", "B is busy", 2)], "all full: the shortest line is reported"
    assert all(server.breaker.state == "closed" for server in backend.servers), "busy servers are alive"
    backend.close()


def test_catalogue_entry_lists_several_servers(servers: tuple[ScriptedServer, ScriptedServer]) -> None:
    a, b = servers
    catalogue = parse_catalogue({"models": [
        {"key": "pool", "label": "Pool", "kind": "local", "model": "m", "context_window": 4096,
         "base_urls": [a.base_url, b.base_url]},
        {"key": "one", "label": "One", "kind": "local", "model": "m", "context_window": 4096,
         "base_url": a.base_url}]})
    pool, one = catalogue.get("pool"), catalogue.get("one")
    assert pool.base_url == a.base_url and pool.urls == (a.base_url, b.base_url) and pool.backend == "openai"
    assert one.urls == (a.base_url,) and one.base_urls == ()
    assert "base_url" not in pool.public() and "base_urls" not in pool.public()
    backend = backend_for_entry(pool, fallback=False)
    assert isinstance(backend, OpenAIBackend)
    assert sorted(answer(backend) for _ in range(2)) == ["from A", "from B"]
    backend.close()
    configured = default_entry(model="m", base_url=f"{a.base_url}, {b.base_url}")
    assert configured.urls == (a.base_url, b.base_url) and configured.backend == "openai"
    with pytest.raises(CatalogueError, match="base_urls must be a list"):
        parse_catalogue({"models": [{"key": "x", "label": "X", "kind": "local", "model": "m",
                                     "context_window": 4096, "base_urls": "http://a/v1"}]})


def test_a_trial_call_the_reader_abandons_does_not_hold_the_circuit_half_open(servers: Pair) -> None:
    """Found by the fault run: a student closed the stream of the half-open trial (or the view failed), and the
    circuit refused every later call (extractive answers for good)."""
    a, _ = servers
    now = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown_s=10, clock=lambda: now[0])
    backend = OpenAIBackend(a.base_url, "m", breaker=breaker)
    breaker.failure()
    now[0] = 11.0
    assert breaker.state == "half_open"
    trial: Any = backend.stream(ASK, GenerationParams())
    assert next(trial) == TokenEvent("from ")
    trial.close()  # the reader goes away mid-answer: no verdict on the server
    assert answer(backend) == "from A", "the next call is the trial again"
    assert breaker.state == "closed"
    backend.close()


def test_a_stream_cut_mid_answer_is_an_error_not_a_short_answer(servers: Pair) -> None:
    """Found by the fault run: a model server killed mid-answer closed its stream cleanly, and the student got
    the first half of the answer as if it were complete."""
    a, b = servers
    a.cut = True
    backend = OpenAIBackend([a.base_url], "m", breaker=CircuitBreaker(threshold=1, cooldown_s=60))
    events = list(backend.stream(ASK, GenerationParams()))
    assert events == [TokenEvent("from "), ErrorEvent("unavailable", "The language model server cannot be reached.")]
    assert backend.breaker.state == "open"
    backend.close()
    pool = OpenAIBackend([a.base_url, b.base_url], "m")
    texts = set()
    for _ in range(2):
        events = list(pool.stream(ASK, GenerationParams()))
        texts.add("".join(e.text for e in events if isinstance(e, TokenEvent)))
        assert isinstance(events[-1], DoneEvent) or events[-1] == ErrorEvent(
            "unavailable", "The language model server cannot be reached."), "text already sent: no second server"
    assert texts == {"from ", "from B"}
    pool.close()
