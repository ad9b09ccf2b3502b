"""The Prometheus registry and every metric of the web process (docs/OPERATIONS.md lists them and what they mean).

Under gunicorn set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the workers start: each worker then
writes its values there, ``/metrics`` sums them across workers, and the gunicorn ``child_exit`` hook must call
:func:`child_exit` so a dead worker's live gauges stop counting. Without it, the values are this process's own.

Labels carry only codes, route patterns and model names: never a user, a course title or a raw path.
"""
from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, REGISTRY, generate_latest, multiprocess,
                               values)

#: HTTP methods counted by name (any other is counted as ``other``).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Latency buckets (seconds) for requests and the first token of an answer.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Buckets (seconds) for long jobs: ingestion of a material.
JOB_BUCKETS = (0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

# --- HTTP --------------------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("coursebots_http_requests_total", "HTTP requests by endpoint (the route pattern), method and "
                        "status", ["endpoint", "method", "status"])
HTTP_LATENCY = Histogram("coursebots_http_request_seconds", "Time to the response headers by endpoint and method "
                         "(a streamed answer's body is measured by coursebots_answer_seconds)",
                         ["endpoint", "method"], buckets=LATENCY_BUCKETS)

# --- LTI launches --------------------------------------------------------------------------------------------------
LAUNCH_REJECTIONS = Counter("coursebots_launch_rejections_total", "Rejected LTI launches by reason code", ["reason"])
LAUNCHES = Counter("coursebots_launches_total", "Accepted LTI launches by message type and role", ["message", "role"])

# --- Chat ----------------------------------------------------------------------------------------------------------
OPEN_STREAMS = Gauge("coursebots_open_streams", "Chat answers streaming right now (all workers)",
                     multiprocess_mode="livesum")
FIRST_TOKEN = Histogram("coursebots_first_token_seconds", "Time from the question to the first token of its answer",
                        buckets=LATENCY_BUCKETS)
ANSWER_SECONDS = Histogram("coursebots_answer_seconds", "Time from the question to the end of its streamed answer",
                           buckets=LATENCY_BUCKETS)
QUESTIONS = Counter("coursebots_questions_total", "Questions accepted for an answer")
ANSWERS = Counter("coursebots_answers_total", "Answers by outcome: answered, not_covered (refused: the materials do "
                  "not cover it), fallback (the extractive fallback answered), error", ["outcome"])
TOKENS = Counter("coursebots_tokens_total", "Model tokens by direction (in = prompt, out = answer) and model",
                 ["direction", "model"])
QUOTA_REJECTIONS = Counter("coursebots_quota_rejections_total", "Questions refused with 429 by code "
                           "(quota_exceeded, rate_limited, model_busy)", ["code"])

# --- Materials -----------------------------------------------------------------------------------------------------
INGESTION_JOBS = Counter("coursebots_ingestion_jobs_total", "Finished ingestion jobs by outcome (ready, failed)",
                         ["outcome"])
INGESTION_SECONDS = Histogram("coursebots_ingestion_seconds", "Duration of an ingestion job (extract, chunk, embed)",
                              buckets=JOB_BUCKETS)

# --- Model backends ------------------------------------------------------------------------------------------------
# (queue depth, loads, GPU memory and circuit state are in course_bots.llm.telemetry: the llm package knows no shell)
BACKEND_ERRORS = Counter("coursebots_backend_errors_total", "Answers the model backend failed, by error code "
                         "(unavailable, timeout, busy, internal...; fallback: the extractive fallback stood in)",
                         ["code"])

ALL = (HTTP_REQUESTS, HTTP_LATENCY, LAUNCH_REJECTIONS, LAUNCHES, OPEN_STREAMS, FIRST_TOKEN, ANSWER_SECONDS, QUESTIONS,
       ANSWERS, TOKENS, QUOTA_REJECTIONS, INGESTION_JOBS, INGESTION_SECONDS, BACKEND_ERRORS)


def multiprocess_mode() -> bool:
    """Whether prometheus_client found ``PROMETHEUS_MULTIPROC_DIR`` when this process started (values in files)."""
    return values.ValueClass is not values.MutexValue


def exposition() -> bytes:
    """The text exposition of every metric: summed over the workers in multiprocess mode, this process's otherwise."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook: drop a dead worker's live gauges (call it from gunicorn.conf.py)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(worker.pid)


def init_app(app: Flask) -> None:
    """Count every request and its latency by endpoint (the URL rule, so ids in paths make no new series)."""

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.monotonic()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = getattr(g, "metrics_started", None)
        endpoint = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        method = request.method if request.method in METHODS else "other"  # a client invents methods, not series
        HTTP_REQUESTS.labels(endpoint=endpoint, method=method, status=str(response.status_code)).inc()
        if started is not None:
            HTTP_LATENCY.labels(endpoint=endpoint, method=method).observe(time.monotonic() - started)
        return response


def scrape_allowed(token: str, networks: tuple[str, ...]) -> int:
    """200 when this request may read /metrics (right bearer token, or an address in ``networks``), else 404/403."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        if token and hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode()):
            return 200
        return 403
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return 404
    if any(address in ipaddress.ip_network(n, strict=False) for n in networks):
        return 200
    return 404
