"""The model side's metrics: circuit state, and the model server's own /metrics (queue, load, waits)."""
from __future__ import annotations

import os
from pathlib import Path

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

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


def test_model_server_metrics_show_queue_load_and_waits(tmp_path: Path) -> None:
    waits = value("coursebots_model_wait_seconds_count")
    engine = Engine(str(build_tiny_model(tmp_path)), EngineOptions(max_batch=2))
    server = BackgroundServer(create_app(engine, "tiny", api_key="k")).start()
    try:
        assert engine.wait_ready(120)
        key = {"Authorization": "Bearer k"}
        base = f"http://{server.host}:{server.port}"
        for _ in range(2):
            answer = httpx.post(base + "/v1/chat/completions", headers=key, timeout=60, json={
                "model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": "Hallo"}]})
            assert answer.status_code == 200
        assert httpx.get(base + "/metrics").status_code != 200  # the API key is required
        scraped = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in
                   text_string_to_metric_families(httpx.get(base + "/metrics", headers=key).text)
                   for s in family.samples}
        assert scraped[("coursebots_model_queue_depth", ())] == 0
        assert scraped[("coursebots_model_active_sequences", ())] == 0
        assert scraped[("coursebots_model_loaded", ())] == 1
        assert scraped[("coursebots_model_loads_total", ())] == 1
        assert scraped[("coursebots_model_wait_seconds_count", ())] == waits + 2
    finally:
        server.stop()
        engine.shutdown()
