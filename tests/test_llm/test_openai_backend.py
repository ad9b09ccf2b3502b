"""The OpenAI-compatible backend against our server, an independent server, a dead one and a slow one."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest

from course_bots.llm.base import (DoneEvent, ErrorEvent, Event, GenerationParams, Passage, StatusEvent, TokenEvent,
                                  collect)
from course_bots.llm.circuit import CircuitBreaker
from course_bots.llm.engine import Engine
from course_bots.llm import openai_backend
from course_bots.llm.extractive import FallbackBackend
from course_bots.llm.openai_backend import OpenAIBackend
from course_bots.llm.server import BackgroundServer

ASK = [{"role": "user", "content": "What is an eigenvalue?"}]
SOURCES = (Passage(1, "Lecture 3.pdf, page 4", "An eigenvalue scales its eigenvector. It is a scalar."),)


def test_streams_from_our_model_server(model_server: BackgroundServer, shared_engine: Engine) -> None:
    backend = OpenAIBackend(model_server.base_url, "tiny", send_extensions=True)
    events = list(backend.stream(ASK, GenerationParams(max_new_tokens=8, ignore_eos=True)))
    assert sum(isinstance(e, TokenEvent) for e in events) >= 2
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.finish_reason == "length"
    assert done.usage.completion_tokens == 8 and done.usage.prompt_tokens == shared_engine.count_tokens(ASK)
    assert backend.health().ok and backend.breaker.state == "closed"


def test_reports_queue_position_and_busy_from_our_server(make_engine: Callable[..., Engine],
                                                         make_server: Callable[..., BackgroundServer],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(max_batch=1, max_queue=1)
    server = make_server(engine)
    backend = OpenAIBackend(server.base_url, "tiny", send_extensions=True)
    long = GenerationParams(max_new_tokens=1800, ignore_eos=True)
    gate = threading.Event()  # shut: decoding stops, so the running answer cannot finish nor the waiting one start
    gate.set()
    decode_step = engine._decode_step

    def gated_step() -> None:
        gate.wait(60)
        decode_step()

    monkeypatch.setattr(engine, "_decode_step", gated_step)
    running: Any = backend.stream(ASK, long)  # a generator: closing it cancels
    try:
        next(e for e in running if isinstance(e, TokenEvent))
        waiting = backend.stream(ASK, GenerationParams(max_new_tokens=2))
        assert next(waiting) == StatusEvent("queued", 1)
        gate.clear()
        refused = list(backend.stream(ASK, GenerationParams(max_new_tokens=2)))
        load = engine.health()
        assert (load.active, load.queue_length) == (1, 1), "busy is answered before the waiting one starts"
    finally:
        gate.set()
    assert refused == [ErrorEvent("busy", refused[0].message, 2)]  # type: ignore[union-attr]
    assert backend.breaker.state == "closed", "a busy server is alive"
    running.close()  # disconnecting cancels the long answer, so the waiting one runs
    assert collect(waiting).finish_reason in ("stop", "length")
    backend.close()


def test_streams_from_an_independent_server(independent_server: Any) -> None:
    backend = OpenAIBackend(independent_server.base_url, "echo")
    events = list(backend.stream(ASK, GenerationParams(max_new_tokens=50)))
    text = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert text == "Echo: What is an eigenvalue?"
    assert isinstance(events[-1], DoneEvent) and events[-1].finish_reason == "stop"
    assert events[-1].usage.completion_tokens == 5  # counted from chunks when the server reports no usage


def test_streams_from_transformers_serve(transformers_serve: str, tiny_model: str) -> None:
    backend = OpenAIBackend(transformers_serve, tiny_model, timeout_s=120)
    events = list(backend.stream(ASK, GenerationParams(max_new_tokens=6)))
    assert any(isinstance(e, TokenEvent) for e in events)
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.finish_reason in ("stop", "length")
    assert 1 <= done.usage.completion_tokens <= 6


def test_retries_transient_errors_with_backoff(independent_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    independent_server.fail_first = 2
    backend = OpenAIBackend(independent_server.base_url, "echo", retries=2, backoff_s=0.05)
    pauses: list[float] = []
    monkeypatch.setattr(openai_backend, "time", SimpleNamespace(monotonic=time.monotonic, sleep=pauses.append))
    answer = collect(backend.stream(ASK, GenerationParams()))
    assert answer.text.startswith("Echo:") and independent_server.requests == 3
    assert pauses == [0.05, 0.1], "waited 0.05 s, then 0.1 s"


def test_dead_server_opens_circuit_and_fails_fast(dead_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = OpenAIBackend(dead_url, "any", retries=1, backoff_s=0.01,
                            breaker=CircuitBreaker(threshold=2, cooldown_s=60))
    first = list(backend.stream(ASK, GenerationParams()))
    assert first == [ErrorEvent("unavailable", "The language model server cannot be reached.")]
    assert backend.breaker.state == "open" and not backend.health().ok
    tries: list[str] = []

    def attempt(rid: str, *args: object) -> Iterator[Event]:
        tries.append(rid)
        return iter(())

    monkeypatch.setattr(backend, "_attempt", attempt)
    second = list(backend.stream(ASK, GenerationParams()))
    assert tries == [], "an open circuit does not even try"
    assert second[0].code == "unavailable" and "circuit open" in second[0].message  # type: ignore[union-attr]


def test_dead_server_falls_back_to_extractive_answer(dead_url: str) -> None:
    backend = FallbackBackend(OpenAIBackend(dead_url, "any", retries=0))
    events = list(backend.stream(ASK, GenerationParams(sources=SOURCES, language="en")))
    assert events[0] == StatusEvent("fallback")
    answer = collect(events)
    assert "No language model is answering" in answer.text
    assert "An eigenvalue scales its eigenvector." in answer.text and "[1]" in answer.text
    assert "Lecture 3.pdf, page 4" in answer.text


def test_slow_server_times_out(independent_server: Any) -> None:
    independent_server.hold = threading.Event()  # the server answers only when the test lets it
    backend = OpenAIBackend(independent_server.base_url, "echo", retries=2)
    try:
        events = list(backend.stream(ASK, GenerationParams(timeout_s=0.5)))
        assert independent_server.answered == 0, "the timeout came while the server was still holding its answer"
    finally:
        independent_server.hold.set()
    assert events == [ErrorEvent("timeout", "The language model server did not answer in time.")]
    assert independent_server.requests == 1, "a timeout is not retried"


def test_circuit_half_opens_after_cooldown_and_closes_on_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=lambda: now[0])
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.0
    assert breaker.state == "half_open" and breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()
