"""The whole load test in one command: fake model server, gunicorn with deploy/gunicorn.conf.py, the load client.

``python bench/load/run.py --backend openai --streams 300 --ramp 20 --hold 30 --out /tmp/coursebots-load/r.json``
with the ``COURSEBOTS_*`` environment of the seeded database (bench/load/seed.py ran first; see docs/BENCHMARKS.md
"issue 15: load"). ``--backend extractive`` answers from the materials without a model server. gunicorn's settings
come from deploy/gunicorn.conf.py; ``--worker-class``, ``--workers`` and ``--threads`` override them (for the
gthread/gevent comparison of docs/SERVING.md). The client runs in its own process (bench/load/client.py).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 300.0) -> None:
    """Wait until ``url`` answers 200 (raise when the process died or time ran out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def start_fake_llm(port: int, tokens: int = 200, rate: float = 30.0, ttft: float = 0.2) -> subprocess.Popen[bytes]:
    """bench/load/fake_llm.py in its own process."""
    process = subprocess.Popen([sys.executable, str(HERE / "fake_llm.py"), "--port", str(port), "--tokens",
                                str(tokens), "--rate", str(rate), "--ttft", str(ttft)])
    wait_for(f"http://127.0.0.1:{port}/v1/models", process, 60)
    return process


def start_gunicorn(port: int, env: dict[str, str], worker_class: str = "", workers: int = 0, threads: int = 0,
                   log: Path | None = None) -> subprocess.Popen[bytes]:
    """gunicorn with deploy/gunicorn.conf.py on 127.0.0.1:port; returns when /readyz answers."""
    env = dict(env, GUNICORN_BIND=f"127.0.0.1:{port}")
    if worker_class:
        env["GUNICORN_WORKER_CLASS"] = worker_class
    if workers:
        env["GUNICORN_WORKERS"] = str(workers)
    if threads:
        env["GUNICORN_THREADS"] = str(threads)
    output = open(log, "wb") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                "wsgi:app"], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    wait_for(f"http://127.0.0.1:{port}/readyz", process)
    return process


def stop(process: subprocess.Popen[bytes], seconds: float = 120.0) -> int:
    """SIGTERM (gunicorn: graceful stop), then wait."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("openai", "extractive"), default="openai")
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--ramp", type=float, default=20.0)
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--worker-class", default="")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--ttft", type=float, default=0.2)
    parser.add_argument("--students", default="/tmp/coursebots-load/students.json")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    env = dict(os.environ, COURSEBOTS_WARM_ON_START="1", COURSEBOTS_WARM_COURSES="5")
    fake = None
    if args.backend == "openai":
        fake_port = free_port()
        fake = start_fake_llm(fake_port, args.tokens, args.rate, args.ttft)
        env.update(COURSEBOTS_LLM_BACKEND="openai", COURSEBOTS_LLM_BASE_URL=f"http://127.0.0.1:{fake_port}/v1",
                   COURSEBOTS_LLM_MODEL="fake", COURSEBOTS_LLM_API_KEY="load-test")
    else:
        env.update(COURSEBOTS_LLM_BACKEND="extractive", COURSEBOTS_LLM_BASE_URL="")
    port = free_port()
    server = start_gunicorn(port, env, args.worker_class, args.workers, args.threads,
                            Path(args.out).with_suffix(".gunicorn.log") if args.out else None)
    try:
        command = [sys.executable, str(HERE / "client.py"), "--base-url", f"http://127.0.0.1:{port}",
                   "--students", args.students, "--streams", str(args.streams), "--ramp", str(args.ramp),
                   "--hold", str(args.hold), "--server-pid", str(server.pid)]
        if fake is not None:
            command += ["--fake-llm", f"http://127.0.0.1:{fake_port}"]
        if env.get("COURSEBOTS_DATABASE_URL", "").startswith("postgresql"):
            command += ["--database-url", env["COURSEBOTS_DATABASE_URL"]]
        if args.out:
            command += ["--out", args.out]
        subprocess.run(command, check=True, env=env)
    finally:
        stop(server)
        if fake is not None:
            stop(fake)


if __name__ == "__main__":
    main()
