"""The model side's metrics: queue waits, loads and unloads, circuit state, and the model server's own /metrics."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
from prometheus_client import REGISTRY

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from course_bots.llm.base import DoneEvent, Event, GenerationParams  # noqa: E402
from course_bots.llm.circuit import CircuitBreaker  # noqa: E402
from course_bots.llm.engine import Engine, EngineOptions  # noqa: E402
from course_bots.llm.server import BackgroundServer, create_app  # noqa: E402
from course_bots.llm.tiny import build_tiny_model  # noqa: E402


def value(name: str, **labels: str) -> float:
    """A sample of the default registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_circuit_state_follows_the_breaker() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=lambda: now[0], name="test_backend")
    state = "coursebots_circuit_state"
    breaker.failure()
    assert value(state, backend="test_backend") == 0
    breaker.failure()
    assert value(state, backend="test_backend") == 2  # open
    now[0] = 11
    assert breaker.allow()
    assert value(state, backend="test_backend") == 1  # half-open: one trial
    breaker.success()
    assert value(state, backend="test_backend") == 0


def test_engine_counts_loads_waits_and_unloads(tmp_path: Path) -> None:
    loads = value("coursebots_model_events_total", event="load")
    unloads = value("coursebots_model_events_total", event="unload")
    waits = value("coursebots_model_queue_wait_seconds_count")
    engine = Engine(str(build_tiny_model(tmp_path)), EngineOptions(max_batch=2, idle_unload_s=None))
    try:
        assert engine.wait_ready(120)
        finished = threading.Event()
        done: list[Event] = []

        def sink(event: Event) -> None:
            if isinstance(event, DoneEvent):
                done.append(event)
                if len(done) == 3:
                    finished.set()

        params = GenerationParams(max_new_tokens=4, temperature=0.0)
        for _ in range(3):  # three requests, batch of two: one waits in the queue
            engine.submit([{"role": "user", "content": "Hallo"}], params, sink)
        assert finished.wait(120)
        assert value("coursebots_model_events_total", event="load") == loads + 1
        assert value("coursebots_model_loaded") == 1
        assert value("coursebots_model_queue_wait_seconds_count") == waits + 3
        server = BackgroundServer(create_app(engine, "tiny", api_key="k")).start()
        try:
            url = f"http://{server.host}:{server.port}/metrics"
            assert httpx.get(url).status_code != 200  # the API key is required
            text = httpx.get(url, headers={"Authorization": "Bearer k"}).text
            assert "coursebots_model_queue_depth" in text and "coursebots_model_queue_wait_seconds" in text
        finally:
            server.stop()
    finally:
        engine.shutdown()
    assert value("coursebots_model_events_total", event="unload") == unloads + 1
    assert value("coursebots_model_loaded") == 0
