"""The OpenAI-compatible backend reads the stream raw: every kind of chunk, odd framing, errors and cut streams."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from course_bots.llm.base import DoneEvent, ErrorEvent, GenerationParams, StatusEvent, TokenEvent, Usage
from course_bots.llm.circuit import CircuitBreaker
from course_bots.llm.openai_backend import OpenAIBackend
from tests.http_stub import QuietHandler, StubServer

ASK = [{"role": "user", "content": "What is an eigenvalue?"}]


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk`` as a server sends it."""
    delta = {"content": content} if content is not None else {}
    return {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def sse(*items: dict[str, Any] | str, newline: str = "\n") -> bytes:
    """Server-sent events of JSON chunks (or raw ``data`` strings such as ``[DONE]``)."""
    return "".join(f"data: {item if isinstance(item, str) else json.dumps(item)}{newline}{newline}"
                   for item in items).encode()


class RawServer(StubServer):
    """Sends the test's bytes as the body of every streaming answer; ``cut`` drops the connection mid-body."""

    def __init__(self) -> None:
        self.body = b""
        self.cut = False
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(f"{len(outer.body):x}\r\n".encode() + outer.body + b"\r\n")
                if not outer.cut:
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

        super().__init__(Handler)


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def events(server: RawServer, **options: Any) -> list[Any]:
    backend = OpenAIBackend(server.base_url, "m", retries=0, **options)
    try:
        return list(backend.stream(ASK, GenerationParams()))
    finally:
        backend.close()


def test_status_tokens_finish_and_usage_extensions(raw_server: RawServer) -> None:
    raw_server.body = sse({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [],
                           "coursebots_status": {"state": "queued", "position": 2}},
                          chunk("Ein"), chunk("wert ü"), chunk(finish="length", coursebots_finish_reason="timeout"),
                          {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [],
                           "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}},
                          "[DONE]")
    assert events(raw_server) == [StatusEvent("queued", 2), TokenEvent("Ein"), TokenEvent("wert ü"),
                                  DoneEvent("timeout", Usage(12, 2))]


def test_framing_crlf_comments_fields_and_multiline_data(raw_server: RawServer) -> None:
    first, second = json.dumps(chunk("a")), json.dumps(chunk("b", finish="stop"))
    raw_server.body = (b": keep-alive\r\n\r\nevent: message\r\nid: 1\r\n" + f"data:{first}\r\n\r\n".encode()
                       + f"data: {second[:20]}\ndata: {second[20:]}\n\n".encode() + sse("[DONE]"))
    assert events(raw_server) == [TokenEvent("a"), TokenEvent("b"), DoneEvent("stop", Usage(0, 2))]


def test_tokens_are_counted_when_the_server_reports_no_usage_and_no_done(raw_server: RawServer) -> None:
    raw_server.body = sse(chunk("x"), chunk(""), chunk("y"), chunk(finish="stop"))
    assert events(raw_server) == [TokenEvent("x"), TokenEvent("y"), DoneEvent("stop", Usage(0, 2))]


def test_an_error_payload_in_the_stream_ends_the_answer(raw_server: RawServer) -> None:
    raw_server.body = sse(chunk("x"), {"error": {"message": "model crashed", "code": 500}}, chunk("never"))
    backend = OpenAIBackend(raw_server.base_url, "m", retries=0)
    assert list(backend.stream(ASK, GenerationParams())) == [
        TokenEvent("x"), ErrorEvent("internal", "model crashed")]
    assert backend.breaker.state == "closed"


@pytest.mark.parametrize("cut", [True, False], ids=["connection-cut", "closed-without-finish"])
def test_a_stream_cut_mid_answer_is_a_failure_not_an_answer(raw_server: RawServer, cut: bool) -> None:
    raw_server.body, raw_server.cut = sse(chunk("half"), chunk(" an answer")), cut
    backend = OpenAIBackend(raw_server.base_url, "m", retries=0, breaker=CircuitBreaker(threshold=1))
    assert list(backend.stream(ASK, GenerationParams())) == [
        TokenEvent("half"), TokenEvent(" an answer"),
        ErrorEvent("unavailable", "The language model server cannot be reached.")]
    assert backend.breaker.state == "open", "the server failed"
    assert backend.health().active == 0
