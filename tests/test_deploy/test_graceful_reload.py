"""A graceful reload (gunicorn HUP, `systemctl reload coursebots-web`) lets answers that are streaming finish, and
gunicorn's ``timeout`` (a heartbeat with gthread) never cuts an answer that streams longer than it."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "bench" / "load"

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_load_{name}", LOAD / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reload_while_answers_stream_loses_none(postgres_database: str, tmp_path: Path) -> None:
    run = bench_module("run")
    fake_port = run.free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("COURSEBOTS_", "GUNICORN_"))},
           "COURSEBOTS_DATABASE_URL": postgres_database, "COURSEBOTS_SECRET_KEY": "reload-secret-" + "s" * 40,
           "COURSEBOTS_PSEUDONYM_KEY": "reload-pseudo-" + "p" * 40,
           "COURSEBOTS_INSTANCE_PATH": str(tmp_path / "instance"), "COURSEBOTS_EMBEDDING_MODEL": "hashing",
           "COURSEBOTS_RETENTION_PURGE_HOURS": "0", "COURSEBOTS_LLM_BACKEND": "openai",
           "COURSEBOTS_LLM_BASE_URL": f"http://127.0.0.1:{fake_port}/v1", "COURSEBOTS_LLM_MODEL": "fake",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "GUNICORN_WORKERS": "1", "PYTHONPATH": str(ROOT)}
    (tmp_path / "metrics").mkdir()
    students = tmp_path / "students.json"
    subprocess.run([sys.executable, str(LOAD / "seed.py"), "--passages", "50", "--students", "8", "--cache",
                    str(tmp_path / "cache"), "--out", str(students)], env=env, check=True, timeout=300, cwd=ROOT)
    fake = run.start_fake_llm(fake_port, tokens=40, rate=10.0, ttft=0.05)  # each answer streams for 4 s
    port = run.free_port()
    log = tmp_path / "gunicorn.log"
    server = run.start_gunicorn(port, env, log=log)
    try:
        out = tmp_path / "result.json"
        client = subprocess.Popen([sys.executable, str(LOAD / "client.py"), "--base-url", f"http://127.0.0.1:{port}",
                                   "--students", str(students), "--streams", "8", "--ramp", "0.5", "--hold", "0",
                                   "--one-question", "--fake-llm", f"http://127.0.0.1:{fake_port}",
                                   "--database-url", postgres_database, "--out", str(out)], env=env)
        for _ in range(600):  # reload once the answers are streaming
            if b"POST /api" in log.read_bytes():
                break
            time.sleep(0.1)
        time.sleep(1.0)
        server.send_signal(signal.SIGHUP)
        assert client.wait(120) == 0
        result = json.loads(out.read_text())
    finally:
        assert run.stop(server) == 0
        run.stop(fake)
    text = log.read_text()
    # The reload came while answers were streaming (each streams for 4 s after its request was logged).
    assert "Hang up: Master" in text and "POST /api/v1/bots" in text[:text.index("Hang up: Master")]
    assert result["errors"] == 0, result["error_kinds"]
    assert result["answered"] == 8 and result["storage"]["exactly_once"]


def test_an_answer_longer_than_gunicorns_timeout_is_not_cut(postgres_database: str, tmp_path: Path) -> None:
    run = bench_module("run")
    fake_port = run.free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("COURSEBOTS_", "GUNICORN_"))},
           "COURSEBOTS_DATABASE_URL": postgres_database, "COURSEBOTS_SECRET_KEY": "timeout-secret-" + "s" * 40,
           "COURSEBOTS_PSEUDONYM_KEY": "timeout-pseudo-" + "p" * 40,
           "COURSEBOTS_INSTANCE_PATH": str(tmp_path / "instance"), "COURSEBOTS_EMBEDDING_MODEL": "hashing",
           "COURSEBOTS_RETENTION_PURGE_HOURS": "0", "COURSEBOTS_LLM_BACKEND": "openai",
           "COURSEBOTS_LLM_BASE_URL": f"http://127.0.0.1:{fake_port}/v1", "COURSEBOTS_LLM_MODEL": "fake",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "GUNICORN_WORKERS": "1",
           "GUNICORN_TIMEOUT": "2", "PYTHONPATH": str(ROOT)}  # the sync worker's timeout would kill it at 2 s
    (tmp_path / "metrics").mkdir()
    students = tmp_path / "students.json"
    subprocess.run([sys.executable, str(LOAD / "seed.py"), "--passages", "20", "--students", "2", "--cache",
                    str(tmp_path / "cache"), "--out", str(students)], env=env, check=True, timeout=300, cwd=ROOT)
    fake = run.start_fake_llm(fake_port, tokens=30, rate=6.0, ttft=0.05)  # the answer streams for 5 s
    port = run.free_port()
    server = run.start_gunicorn(port, env, log=tmp_path / "gunicorn.log")
    try:
        out = tmp_path / "result.json"
        subprocess.run([sys.executable, str(LOAD / "client.py"), "--base-url", f"http://127.0.0.1:{port}",
                        "--students", str(students), "--streams", "2", "--ramp", "0", "--hold", "0",
                        "--one-question", "--fake-llm", f"http://127.0.0.1:{fake_port}", "--database-url",
                        postgres_database, "--out", str(out)], env=env, check=True, timeout=120)
        result = json.loads(out.read_text())
    finally:
        assert run.stop(server) == 0
        run.stop(fake)
    assert "WORKER TIMEOUT" not in (tmp_path / "gunicorn.log").read_text()
    assert result["errors"] == 0 and result["answered"] == 2 and result["storage"]["exactly_once"]
    assert result["answer_ms"]["p50"] > 4000  # it really streamed past the 2 s timeout
