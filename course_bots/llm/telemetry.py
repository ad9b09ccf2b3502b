"""Prometheus metrics of the model side: the engine's queue, model loads, GPU memory and circuit breakers.

They live here (not in ``lti_tool.metrics``) because ``course_bots.llm`` knows neither Flask nor the shell. In the
model server they are served on its own ``GET /metrics``; a web process that runs a model in-process or calls a
model server through a circuit breaker shows them on its ``/metrics`` too (the same default registry).
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, REGISTRY, generate_latest, multiprocess, \
    values

WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}

QUEUE_DEPTH = Gauge("coursebots_model_queue_depth", "Requests waiting for a place in the model's batch",
                    multiprocess_mode="livesum")
ACTIVE = Gauge("coursebots_model_active_sequences", "Sequences the model is generating right now",
               multiprocess_mode="livesum")
QUEUE_WAIT = Histogram("coursebots_model_queue_wait_seconds", "Time a request waited in the queue before its "
                       "prefill", buckets=WAIT_BUCKETS)
MODEL_EVENTS = Counter("coursebots_model_events_total", "Model lifecycle: load, load_failed, unload", ["event"])
LOAD_SECONDS = Histogram("coursebots_model_load_seconds", "Time to load the weights",
                         buckets=(1, 5, 10, 30, 60, 120, 300, 600))
LOADED = Gauge("coursebots_model_loaded", "1 while the weights are in memory", multiprocess_mode="livemax")
GPU_MEMORY = Gauge("coursebots_gpu_memory_bytes", "GPU memory held by tensors of this process (absent without a GPU)",
                   multiprocess_mode="livesum")
CIRCUIT_STATE = Gauge("coursebots_circuit_state", "A model backend's circuit breaker: 0 closed, 1 half-open, 2 open",
                      ["backend"], multiprocess_mode="livemax")

_gpu_checked_at = 0.0


def engine_load(waiting: int, active: int) -> None:
    """Record the engine's queue depth and batch size (called by its loop)."""
    QUEUE_DEPTH.set(waiting)
    ACTIVE.set(active)
    global _gpu_checked_at
    now = time.monotonic()
    if active and now - _gpu_checked_at > 5.0:  # while generating: at most every few seconds
        _gpu_checked_at = now
        gpu_memory()


def gpu_memory() -> None:
    """Record the GPU memory this process holds (nothing without CUDA)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    if torch.cuda.is_available():
        GPU_MEMORY.set(torch.cuda.memory_allocated())


def circuit(backend: str, state: str) -> None:
    """Record a circuit breaker's state (``closed``, ``half_open``, ``open``)."""
    CIRCUIT_STATE.labels(backend=backend).set(CIRCUIT_STATES.get(state, 0))


def exposition() -> bytes:
    """The text exposition of this process's metrics (summed over processes in multiprocess mode)."""
    if values.ValueClass is not values.MutexValue:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
