"""deploy/entrypoint.sh outside a container: it parses, migrates a fresh SQLite database and starts gunicorn."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path),
           "COURSEBOTS_PYTHON": sys.executable, "COURSEBOTS_INSTANCE_PATH": str(tmp_path / "instance"),
           "COURSEBOTS_DATABASE_URL": f"sqlite:///{tmp_path / 'tool.sqlite3'}",
           "COURSEBOTS_SECRET_KEY": "k" * 48, "COURSEBOTS_PSEUDONYM_KEY": "p" * 48,
           "COURSEBOTS_EMBEDDING_MODEL": "hashing", "COURSEBOTS_RETENTION_PURGE_HOURS": "0",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_entrypoint_parses_in_posix_sh() -> None:
    assert subprocess.run(["sh", "-n", str(ENTRYPOINT)], capture_output=True).returncode == 0
    if shutil.which("dash"):
        assert subprocess.run(["dash", "-n", str(ENTRYPOINT)], capture_output=True).returncode == 0
    assert os.access(ENTRYPOINT, os.X_OK)


def test_migrate_role_creates_the_schema(tmp_path: Path) -> None:
    result = subprocess.run([str(ENTRYPOINT), "migrate"], env=environment(tmp_path), capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {"alembic_version", "course_bot", "message"} <= tables(tmp_path / "tool.sqlite3")


def test_web_role_migrates_then_serves_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    env = environment(tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1", GUNICORN_THREADS="4",
                      COURSEBOTS_WARM_ON_START="1")
    server = subprocess.Popen([str(ENTRYPOINT), "web"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        body = b""
        for _ in range(600):
            if server.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
                    body = response.read()
                    break
            except OSError:
                time.sleep(0.2)
        assert b'"ready"' in body, server.stdout.read() if server.poll() is not None else "no answer"  # type: ignore
        assert "message" in tables(tmp_path / "tool.sqlite3")
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=120)[0]
    assert server.returncode == 0, output
    assert "Booting worker" in output and "warmed the worker" in output and "Shutting down" in output


def test_other_arguments_are_executed_as_given(tmp_path: Path) -> None:
    result = subprocess.run([str(ENTRYPOINT), "echo", "hello"], env=environment(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "hello"


@pytest.mark.parametrize("role", ["worker", "purge"])
def test_roles_name_existing_commands(role: str, tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    command = {"worker": ["materials", "rq-worker", "--help"], "purge": ["privacy", "purge", "--help"]}[role]
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "lti_tool", *command], env=environment(tmp_path),
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
