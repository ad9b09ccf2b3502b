"""deploy/gunicorn.conf.py: the measured worker class, timeouts that never cut a 60 s answer, proxies, metrics."""
from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "gunicorn.conf.py"


def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> dict[str, Any]:
    for key in ("GUNICORN_WORKER_CLASS", "GUNICORN_THREADS", "GUNICORN_WORKERS", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return runpy.run_path(str(CONF))


def test_the_chosen_worker_class_serves_300_streams_on_two_cores(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    conf = load(monkeypatch, tmp_path, GUNICORN_WORKERS="2")
    assert conf["worker_class"] == "gthread"  # docs/SERVING.md: measured against gevent at 300 open streams
    assert conf["workers"] * conf["threads"] >= 300
    assert conf["preload_app"] is False  # models and database connections are opened per worker, after the fork


def test_timeouts_do_not_cut_a_60_second_answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = load(monkeypatch, tmp_path)
    # With gthread the timeout is the worker's heartbeat, not a request's length; still keep it above an answer's.
    assert conf["timeout"] > 60 and conf["graceful_timeout"] > 60 and conf["keepalive"] >= 60


def test_proxies_and_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = load(monkeypatch, tmp_path, GUNICORN_THREADS="50", GUNICORN_FORWARDED_ALLOW_IPS="10.0.0.5")
    assert conf["threads"] == 50 and conf["forwarded_allow_ips"] == "10.0.0.5"
    monkeypatch.delenv("GUNICORN_FORWARDED_ALLOW_IPS")
    assert load(monkeypatch, tmp_path)["forwarded_allow_ips"] == "127.0.0.1,::1"


def test_metrics_folder_is_emptied_on_start_and_dead_workers_are_marked(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    conf = load(monkeypatch, tmp_path)
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "gauge_livesum_123.db").write_bytes(b"old")
    conf["on_starting"](None)
    assert list(folder.iterdir()) == []

    class Worker:
        pid = 123

    conf["child_exit"](None, Worker())  # must not fail (marks the pid's live gauges dead)


def test_gunicorn_accepts_the_configuration(tmp_path: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "COURSEBOTS_INSTANCE_PATH": str(tmp_path / "instance")}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "-c", str(CONF), "wsgi:app"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
