"""Prometheus metrics of the model side: the engine's queue and load, GPU memory, waits and circuit breakers.

They live here (not in ``lti_tool.metrics``) because ``course_bots.llm`` knows neither Flask nor the shell. The
model server serves them on its own ``GET /metrics``: the engine's state is read when Prometheus scrapes
(:class:`EngineCollector`), so the scheduler loop carries no instrumentation. A web process that calls a model
server through a circuit breaker shows that breaker's state on its ``/metrics`` (the same default registry).
"""
from __future__ import annotations

import sys
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram, REGISTRY, generate_latest, multiprocess, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}

MODEL_WAIT = Histogram("coursebots_model_wait_seconds", "Model server: from a request's submission to its first "
                       "token (the wait for a place in the batch, then the prefill)",
                       buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0))
CIRCUIT_STATE = Gauge("coursebots_circuit_state", "A model backend's circuit breaker: 0 closed, 1 half-open, 2 open",
                      ["backend"], multiprocess_mode="livemax")


class EngineCollector:
    """Reads an engine's queue, batch, load state and GPU memory at scrape time."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """The engine's current state as metric families."""
        state = self.engine.health()
        for name, doc, value in (
                ("coursebots_model_queue_depth", "Requests waiting for a place in the model's batch",
                 state.queue_length),
                ("coursebots_model_active_sequences", "Sequences the model is generating right now", state.active),
                ("coursebots_model_loaded", "1 while the weights are in memory", int(state.loaded)),
                ("coursebots_model_warming_up", "1 while the weights are loading", int(state.warming_up))):
            yield GaugeMetricFamily(name, doc, value=value)
        yield CounterMetricFamily("coursebots_model_loads", "Times the weights were loaded (idle unloads reload them)",
                                  value=getattr(self.engine, "loads", 0))
        torch = sys.modules.get("torch")  # loaded whenever a model is; never imported just for a scrape
        if torch is not None and torch.cuda.is_available():
            yield GaugeMetricFamily("coursebots_gpu_memory_bytes", "GPU memory held by this process's tensors",
                                    value=torch.cuda.memory_allocated())
            yield GaugeMetricFamily("coursebots_gpu_memory_reserved_bytes", "GPU memory reserved by this process's "
                                    "allocator", value=torch.cuda.memory_reserved())


def circuit(backend: str, state: str) -> None:
    """Record a circuit breaker's state (``closed``, ``half_open``, ``open``)."""
    CIRCUIT_STATE.labels(backend=backend).set(CIRCUIT_STATES.get(state, 0))


def exposition(engine: Any = None) -> bytes:
    """This process's metrics as text (summed over processes in multiprocess mode), plus ``engine``'s state."""
    if values.ValueClass is not values.MutexValue:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if engine is not None:
        own = CollectorRegistry()
        own.register(EngineCollector(engine))
        text += generate_latest(own)
    return text
