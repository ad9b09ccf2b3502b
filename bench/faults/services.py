"""Throwaway services for the fault runs: PostgreSQL (pg_ctl on a temporary directory and a free port), redis-server
on a free port, the scripted model server, and the tool under gunicorn. The shared services on 5432 and 6379 are
never touched. Each class starts, stops and restarts its process; everything lives under one temporary folder.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until 127.0.0.1:port accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    """A PostgreSQL cluster of its own (trust auth, fsync off) in ``directory`` on a free port."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory / "pg", free_port()
        self.directory.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(_as_postgres(["initdb", "-D", str(self.directory), "-U", "postgres", "--auth=trust",
                                     "-E", "UTF8", "--no-sync"]), check=True, stdout=subprocess.DEVNULL)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``faults`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/faults"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(self.directory), "-l", str(self.directory / "log"),
                                     "-o", options, "-w", *args]), check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        """Start and create the database on the first start."""
        self._ctl("start")
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'faults'").fetchone():
                conn.execute("CREATE DATABASE faults")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every open connection is cut."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        """Stop (fast)."""
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(self.directory), "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Process:
    """A child process started from a command line, stopped by its own pid."""

    def __init__(self, cmd: list[str], port: int, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.cmd, self.port, self.env, self.log = cmd, port, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait for the port."""
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        if self.port:
            wait_port(self.port, timeout, self.process)

    def kill(self) -> None:
        """SIGKILL: no goodbye, as a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def signal(self, signum: int) -> None:
        """Send a signal (HUP reloads gunicorn's workers)."""
        if self.process is not None:
            self.process.send_signal(signum)


def redis_server(directory: Path) -> Process:
    """redis-server on a free port without persistence (a restart comes back empty, as after a crash)."""
    port = free_port()
    return Process(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", str(directory)], port)


def scripted_llm(tokens: int = 30, delay: float = 0.1) -> Process:
    """The scripted OpenAI-compatible streaming server on a free port."""
    port = free_port()
    return Process([sys.executable, str(ROOT / "bench" / "faults" / "scripted_llm.py"), "--port", str(port),
                    "--tokens", str(tokens), "--delay", str(delay)], port)


def gunicorn(env: dict[str, str], log: Path, workers: int = 2, threads: int = 16) -> Process:
    """The tool under gunicorn: deploy/gunicorn.conf.py when present, else plain gthread workers."""
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers),
           "GUNICORN_THREADS": str(threads), "GUNICORN_GRACEFUL_TIMEOUT": "30", "GUNICORN_MAX_REQUESTS": "0"}
    conf = ROOT / "deploy" / "gunicorn.conf.py"
    base = [sys.executable, "-m", "gunicorn"]
    cmd = (base + ["-c", str(conf), "wsgi:app"] if conf.exists() else
           base + ["-k", "gthread", "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
                   "--graceful-timeout", "30", "wsgi:app"])
    return Process(cmd, port, env, log)


def gunicorn_workers(master_pid: int) -> list[int]:
    """The worker pids of a gunicorn master."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master_pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]
