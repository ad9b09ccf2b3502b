"""What observability costs: the request hooks (metrics, request id, access line) and one /metrics scrape.

    python bench/observability/overhead.py [--requests 3000] [--workers 8]

Runs the real app (SQLite in a temporary folder) in this process. (1) ``GET /healthz`` through Flask's test client
with the hooks, then with the three hooks of lti_tool.metrics and lti_tool.logging_json taken out: the difference
per request is their cost (the access line goes to a handler at INFO that discards it). (2) The time of one
``/metrics`` answer in a single process, and (in a child process) in gunicorn's multiprocess mode with ``--workers``
workers' files. Prints medians of 5 alternating rounds.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def per_request(client: object, n: int) -> float:
    """CPU seconds of this process per GET /healthz over ``n`` requests (CPU time: neighbours on a shared machine
    stretch the wall clock, not this)."""
    started = time.process_time()
    for _ in range(n):
        client.get("/healthz")  # type: ignore[attr-defined]
    return (time.process_time() - started) / n


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    from flask_migrate import upgrade

    from lti_tool import create_app, metrics
    from lti_tool.config import Config

    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger("lti_tool.access").propagate = False
    logging.getLogger("lti_tool.access").addHandler(logging.NullHandler())
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Config(secret_key="s" * 48, pseudonym_key="p" * 48, embedding_model="hashing",
                                testing=True, database_url=f"sqlite:///{tmp}/bench.sqlite3").resolved(tmp))
        with app.app_context():
            upgrade()
        client = app.test_client()
        client.get("/healthz")
        own = ("lti_tool.metrics", "lti_tool.logging_json")
        hooks = {"before": app.before_request_funcs[None][:], "after": app.after_request_funcs[None][:]}
        plain = {k: [f for f in v if f.__module__ not in own] for k, v in hooks.items()}
        timings: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(5):  # rounds alternate, so a busy neighbour on a shared machine hits both alike
            for on in (True, False):
                chosen = hooks if on else plain
                app.before_request_funcs[None], app.after_request_funcs[None] = chosen["before"], chosen["after"]
                timings[on].append(per_request(client, args.requests // 5))
        with_hooks, without = statistics.median(timings[True]), statistics.median(timings[False])
        scrape = []
        for _ in range(5):
            started = time.perf_counter()
            metrics.exposition()
            scrape.append(time.perf_counter() - started)
    print(f"GET /healthz, CPU: {with_hooks * 1e6:.0f} us with the hooks, {without * 1e6:.0f} us without "
          f"-> {(with_hooks - without) * 1e6:.0f} us per request")
    print(f"/metrics exposition, one process: {statistics.median(scrape) * 1e3:.2f} ms")
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        worker = ("from lti_tool import metrics\n"
                  "for e in ('/a', '/b', '/api/v1/bots/<int:bot_id>/chat'):\n"
                  "    metrics.HTTP_REQUESTS.labels(endpoint=e, method='GET', status='200').inc()\n"
                  "    metrics.HTTP_LATENCY.labels(endpoint=e, method='GET').observe(0.01)\n"
                  "metrics.OPEN_STREAMS.inc(); metrics.FIRST_TOKEN.observe(0.4)\n")
        for _ in range(args.workers):
            subprocess.run([sys.executable, "-c", worker], env=env, cwd=ROOT, check=True)
        reader = ("import time, statistics\nfrom lti_tool import metrics\nmetrics.exposition()\nt = []\n"
                  "for _ in range(5):\n    s = time.perf_counter(); metrics.exposition(); "
                  "t.append(time.perf_counter() - s)\nprint(statistics.median(t))")
        out = subprocess.run([sys.executable, "-c", reader], env=env, cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout
    print(f"/metrics exposition, multiprocess mode with {args.workers} workers' files: {float(out) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
