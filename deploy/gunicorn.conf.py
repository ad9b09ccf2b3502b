"""gunicorn settings for CourseBots: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``.

Every value can be overridden from the environment (``GUNICORN_*`` below, or gunicorn's own ``GUNICORN_CMD_ARGS``).
Why these values: docs/SERVING.md (measured with bench/load/ at 300 open answer streams).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


# --- Workers ---------------------------------------------------------------------------------------------------
# gthread: every open answer stream holds one thread (not one process, as sync workers do); the GIL is released
# while a thread waits on the model server, PostgreSQL or Redis. Measured against gevent in docs/SERVING.md.
worker_class = _env("GUNICORN_WORKER_CLASS", "gthread")
# One process per core: a process embeds queries and renders answers on one core (the GIL); more processes than
# cores only add memory (each holds the embedding model and its course indexes).
workers = int(_env("GUNICORN_WORKERS", str(os.cpu_count() or 2)))
# Open streams one process serves at once (gthread). Beyond workers x threads, new connections wait in the backlog.
threads = int(_env("GUNICORN_THREADS", "160"))
# gevent only: concurrent connections per process (gunicorn's gevent worker monkey-patches before loading the app).
worker_connections = int(_env("GUNICORN_WORKER_CONNECTIONS", "1000"))
backlog = int(_env("GUNICORN_BACKLOG", "2048"))
bind = _env("GUNICORN_BIND", "127.0.0.1:8000").split(",")
# The model and indexes are loaded per worker after the fork (wsgi.py warms them): never preload, forking a process
# that already started torch/OpenMP threads or opened database connections is unsafe.
preload_app = False

# --- Timeouts --------------------------------------------------------------------------------------------------
# With gthread and gevent, `timeout` is the worker's heartbeat, not a request's duration: a 60 s (or 10 min) answer
# stream is never cut by it. A worker whose main loop is stuck this long is restarted.
timeout = int(_env("GUNICORN_TIMEOUT", "120"))
# On reload (HUP) or stop (TERM), a worker finishes its open answers for up to this long before it is killed: longer
# than the longest answer (COURSEBOTS answers time out after 60 s by default).
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "90"))
# Idle keep-alive behind nginx (which reuses upstream connections); the chat stream itself ends each response.
keepalive = int(_env("GUNICORN_KEEPALIVE", "75"))
# Recycle workers now and then (jitter so they do not restart together); 0 turns it off.
max_requests = int(_env("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = int(_env("GUNICORN_MAX_REQUESTS_JITTER", "2000"))

# gunicorn >= 25's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which two servers on
# one machine would share: off unless GUNICORN_CONTROL_SOCKET names a path of this server's own.
control_socket = _env("GUNICORN_CONTROL_SOCKET", "") or "/run/coursebots-web/gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")

# --- Proxies ---------------------------------------------------------------------------------------------------
# Addresses whose X-Forwarded-* headers gunicorn believes (nginx on the same host by default). The app itself trusts
# COURSEBOTS_PROXY_HOPS hops through werkzeug's ProxyFix (lti_tool/app.py).
forwarded_allow_ips = _env("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_allow_ips = forwarded_allow_ips

# --- Logging ---------------------------------------------------------------------------------------------------
# Access logs carry paths and client addresses only; set GUNICORN_ACCESSLOG=- to write them to stdout.
accesslog = _env("GUNICORN_ACCESSLOG", "") or None
errorlog = "-"
loglevel = _env("GUNICORN_LOGLEVEL", "info")
# Leave request bodies and query strings out of the access log (the LTI launch posts an id_token).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss'

# --- Prometheus across workers ---------------------------------------------------------------------------------
# /metrics sums every worker's values (lti_tool/metrics.py) when PROMETHEUS_MULTIPROC_DIR names an empty folder.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="coursebots-metrics-")


def on_starting(server: Any) -> None:
    """Start with an empty metrics folder (values of a previous run would be summed in)."""
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its live gauges (open streams) stop counting."""
    try:
        from lti_tool import metrics
    except ImportError:  # an installation without the metrics module
        return
    metrics.child_exit(server, worker)


def on_exit(server: Any) -> None:
    """Remove the metrics folder gunicorn created for itself."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
