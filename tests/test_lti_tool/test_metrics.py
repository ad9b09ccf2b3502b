"""/metrics: who may read it, what it counts per endpoint, and the multiprocess hooks gunicorn needs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from course_bots import backends
from course_bots.chat import operations as chat
from course_bots.chat.models import Message
from course_bots.llm.base import DoneEvent, ErrorEvent, TokenEvent, Usage
from course_bots.materials import jobs, operations
from course_bots.models import CourseBot
from course_bots.privacy import consent
from course_bots.quotas.models import BotQuota
from lti_tool import metrics
from lti_tool.config import Config, ConfigError
from lti_tool.extensions import db
from retrieval.types import Chunk, Locator, SearchHit
from tests.test_course_bots.conftest import bearer, make_bot, make_session


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_loopback_reads_metrics_by_default(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    for name in ("coursebots_open_streams", "coursebots_first_token_seconds", "coursebots_http_requests_total"):
        assert name.encode() in response.data


def test_other_addresses_get_404(client: FlaskClient) -> None:
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 404


def test_the_token_opens_metrics_from_anywhere(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(metrics_token="s3cret-token", metrics_allow=())
    client = app.test_client()
    far = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", environ_base=far).status_code == 404
    assert client.get("/metrics", environ_base=far, headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.get("/metrics", environ_base=far, headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is not special once the allow-list is empty


def test_allow_list_takes_networks(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(metrics_allow=("10.0.0.0/8",)).test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "11.1.2.3"}).status_code == 404


def test_requests_are_counted_by_route_pattern_not_path(app: Flask, client: FlaskClient) -> None:
    before = samples(client.get("/metrics").get_data(as_text=True))
    client.get("/healthz")
    client.get("/api/v1/bots/12345/conversations")  # no session: 401, but counted under the rule
    client.get("/api/v1/bots/777/conversations")
    after = samples(client.get("/metrics").get_data(as_text=True))
    rule = "/api/v1/bots/<int:bot_id>/conversations"
    key = ("coursebots_http_requests_total", (("endpoint", rule), ("method", "GET"), ("status", "401")))
    assert after[key] - before.get(key, 0.0) == 2
    assert not any("12345" in dict(labels).get("endpoint", "") for _, labels in after)
    latency = ("coursebots_http_request_seconds_count", (("endpoint", "/healthz"), ("method", "GET")))
    assert after[latency] - before.get(latency, 0.0) == 1
    client.open("/nowhere/42?x=1", method="BREW")  # an invented method and path make no new series
    final = samples(client.get("/metrics").get_data(as_text=True))
    labels = [dict(key[1]) for key in final if key[0] == "coursebots_http_requests_total"]
    assert {"endpoint": "<unmatched>", "method": "other", "status": "405"} in labels \
        or {"endpoint": "<unmatched>", "method": "other", "status": "404"} in labels
    assert not any(label["method"] == "BREW" or "42" in label["endpoint"] for label in labels)


def test_requests_get_an_id(client: FlaskClient) -> None:
    assert len(client.get("/healthz").headers["X-Request-Id"]) == 32
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    odd = client.get("/healthz", headers={"X-Request-Id": "<script>"}).headers["X-Request-Id"]
    assert odd != "<script>" and len(odd) == 32


def test_multiprocess_mode_sums_workers_and_forgets_dead_ones(tmp_path: Path) -> None:
    """Two 'workers' (processes) each open a stream; the exposition sums them; child_exit drops a dead one."""
    directory = tmp_path / "prom"
    directory.mkdir()
    worker = ("import os, sys; from lti_tool import metrics; metrics.OPEN_STREAMS.inc(); "
              "metrics.FIRST_TOKEN.observe(0.3); print(os.getpid())")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    pids = [int(subprocess.run([sys.executable, "-c", worker], env=env, check=True, capture_output=True,
                               text=True).stdout) for _ in range(2)]
    read = ("import sys; from lti_tool import metrics; sys.stdout.write(metrics.exposition().decode())")

    def exposition() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = subprocess.run([sys.executable, "-c", read], env=env, check=True, capture_output=True, text=True)
        return samples(out.stdout)

    # livesum counts only live processes: these have exited but are not yet marked dead, as in gunicorn until
    # child_exit runs.
    assert exposition()[("coursebots_first_token_seconds_count", ())] == 2
    assert exposition()[("coursebots_open_streams", ())] == 2

    class Worker:
        pid = pids[0]

    hook = (f"import os; from lti_tool import metrics; W = type('W', (), {{'pid': {pids[0]}}}); "
            "metrics.child_exit(None, W())")
    subprocess.run([sys.executable, "-c", hook], env=env, check=True)
    assert exposition()[("coursebots_open_streams", ())] == 1
    assert exposition()[("coursebots_first_token_seconds_count", ())] == 2  # counts survive their worker
    metrics.child_exit(None, Worker())  # without the directory in this process: nothing to do, no error


def test_ingestion_jobs_are_counted_with_their_duration(make_app, tmp_path: Path) -> None:  # type: ignore
    from flask_migrate import upgrade
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    app = make_app(database_url=f"sqlite:///{tmp_path / 'jobs.sqlite3'}", ingest_threads=0,
                   embedding_model="hashing")
    ready, failed = value("coursebots_ingestion_jobs_total", outcome="ready"), \
        value("coursebots_ingestion_jobs_total", outcome="failed")
    durations = value("coursebots_ingestion_seconds_count")
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="Bio"))
        db.session.commit()
        operations.upload_material(1, "notes.md", ("## Osmosis\n\n" + "Water crosses membranes. " * 40).encode())
        operations.upload_material(1, "broken.pdf", b"%PDF-1.4 not really a pdf")
        db.session.commit()
        assert jobs.run_pending() == 2
        db.session.remove()
        db.engine.dispose()
    assert value("coursebots_ingestion_jobs_total", outcome="ready") == ready + 1
    assert value("coursebots_ingestion_jobs_total", outcome="failed") == failed + 1
    assert value("coursebots_ingestion_seconds_count") == durations + 2


def test_chat_answers_are_counted_by_outcome(app: Flask, client: FlaskClient,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    class Scripted:
        name = "scripted"

        def __init__(self, *events: Any) -> None:
            self.events = events

        def stream(self, messages: Any, params: Any, request_id: Any = None) -> Any:
            yield from self.events

        def cancel(self, request_id: str) -> None:
            pass

    def search(bot_id: int, query: str, k: int) -> list[SearchHit]:
        if "weather" in query:
            return []
        chunk = Chunk("c1", "7", "Lecture 3.pdf", "The learning rate controls the step size.", position=4,
                      position_end=4, locator=Locator.PAGE)
        return [SearchHit(chunk, 0.9, rank=1)]

    backend: dict[str, Any] = {}
    monkeypatch.setattr(chat, "default_search", search)
    monkeypatch.setattr(backends, "backend_for", lambda entry: backend["b"])
    with app.app_context():
        bot = make_bot()
        student = make_session(bot)
        consent.record_consent(student, True, consent.current_notice(student.issuer, student.locale).version)
        db.session.commit()
        headers, bot_id = bearer(student), bot.id
    outcomes = ("answered", "not_covered", "error")
    before = {o: value("coursebots_answers_total", outcome=o) for o in outcomes}
    questions, first = value("coursebots_questions_total"), value("coursebots_first_token_seconds_count")
    errors = value("coursebots_backend_errors_total", code="unavailable")
    script = [Scripted(TokenEvent("The rate [1]."), DoneEvent("stop", Usage(120, 7))),
              None,
              Scripted(ErrorEvent("unavailable", "down"))]
    for number, (question, scripted) in enumerate(zip(("What is the learning rate?", "What is the weather?",
                                                       "And the learning rate again?"), script)):
        backend["b"] = scripted
        response = client.post(f"/api/v1/bots/{bot_id}/chat", headers=headers,
                               json={"question": question, "client_id": f"q-{number}"})
        assert response.status_code == 200
        response.get_data()  # the whole stream
    assert {o: value("coursebots_answers_total", outcome=o) - before[o] for o in outcomes} == \
        {"answered": 1, "not_covered": 1, "error": 1}
    assert value("coursebots_questions_total") - questions == 3
    assert value("coursebots_first_token_seconds_count") - first == 2  # the answer and the refusal
    assert value("coursebots_backend_errors_total", code="unavailable") - errors == 1
    with app.app_context():

        model = db.session.query(Message.model_id).filter(Message.prompt_tokens == 120).scalar()
    assert model  # the catalogue entry's label the answer was stored under
    assert value("coursebots_tokens_total", direction="in", model=model) >= 120
    assert value("coursebots_tokens_total", direction="out", model=model) >= 7
    assert value("coursebots_open_streams") == 0  # every stream decremented its gauge

    # A quota refusal is counted by its code at the response.

    with app.app_context():
        db.session.add(BotQuota(bot_id=bot_id, role="learner", questions_per_day=1))
        db.session.commit()
    refused = value("coursebots_quota_rejections_total", code="quota_exceeded")
    response = client.post(f"/api/v1/bots/{bot_id}/chat", headers=headers, json={"question": "hi", "client_id": "q"})
    assert response.status_code == 429 and response.get_json()["error"]["code"] == "quota_exceeded"
    assert value("coursebots_quota_rejections_total", code="quota_exceeded") - refused == 1


def test_metrics_settings_are_checked_when_read(tmp_path: Path) -> None:

    config = Config.from_env({"COURSEBOTS_METRICS_ALLOW": "10.0.0.0/8, ::1", "COURSEBOTS_LOG_FORMAT": "JSON"},
                             instance_path=str(tmp_path))
    assert config.metrics_allow == ("10.0.0.0/8", "::1") and config.log_format == "json"
    for key, value in (("COURSEBOTS_METRICS_ALLOW", "10.0.0.0/33"), ("COURSEBOTS_METRICS_ALLOW", "intranet"),
                       ("COURSEBOTS_LOG_FORMAT", "xml")):
        with pytest.raises(ConfigError, match=key):
            Config.from_env({key: value}, instance_path=str(tmp_path))
