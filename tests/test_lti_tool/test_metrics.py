"""/metrics: who may read it, what it counts per endpoint, and the multiprocess hooks gunicorn needs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from lti_tool import metrics


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

    from course_bots.materials import jobs, operations
    from course_bots.models import CourseBot
    from lti_tool.extensions import db

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
