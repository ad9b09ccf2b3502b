"""The CI version of the load test: gunicorn with deploy/gunicorn.conf.py on PostgreSQL + Redis, 30 concurrent
answer streams from the fake OpenAI-compatible server; zero errors and every question and answer stored exactly once.

No timing is asserted (the figures are bench/load/'s, in docs/BENCHMARKS.md "issue 15: load").
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "bench" / "load"

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_load_{name}", LOAD / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_30_streams_through_gunicorn_no_errors_stored_exactly_once(
        postgres_database: str, redis_url: str, tmp_path: Path) -> None:
    import redis

    run = bench_module("run")
    redis.Redis.from_url(redis_url).flushdb()
    fake_port = run.free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("COURSEBOTS_", "GUNICORN_"))},
           "COURSEBOTS_DATABASE_URL": postgres_database, "COURSEBOTS_REDIS_URL": redis_url,
           "COURSEBOTS_SECRET_KEY": "ci-load-secret-" + "s" * 40,
           "COURSEBOTS_PSEUDONYM_KEY": "ci-load-pseudo-" + "p" * 40,
           "COURSEBOTS_INSTANCE_PATH": str(tmp_path / "instance"), "COURSEBOTS_EMBEDDING_MODEL": "hashing",
           "COURSEBOTS_RETENTION_PURGE_HOURS": "0", "COURSEBOTS_LLM_BACKEND": "openai",
           "COURSEBOTS_LLM_BASE_URL": f"http://127.0.0.1:{fake_port}/v1", "COURSEBOTS_LLM_MODEL": "fake",
           "COURSEBOTS_WARM_ON_START": "1", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "GUNICORN_WORKERS": "2", "PYTHONPATH": str(ROOT),
           # Each simulated student asks again the moment an answer ends (~0.7 s here): more than a person's 6 a
           # minute, so the fair-use burst limit would refuse some (tested in the quota tests, not here).
           "COURSEBOTS_QUOTA_STUDENT_BURST_PER_MINUTE": "0"}
    (tmp_path / "metrics").mkdir()
    students = tmp_path / "students.json"
    subprocess.run([sys.executable, str(LOAD / "seed.py"), "--passages", "200", "--students", "30", "--cache",
                    str(tmp_path / "cache"), "--out", str(students)], env=env, check=True, timeout=300, cwd=ROOT)
    fake = run.start_fake_llm(fake_port, tokens=40, rate=60.0, ttft=0.05)
    port = run.free_port()
    server = run.start_gunicorn(port, env, log=tmp_path / "gunicorn.log")
    try:
        out = tmp_path / "result.json"
        subprocess.run([sys.executable, str(LOAD / "client.py"), "--base-url", f"http://127.0.0.1:{port}",
                        "--students", str(students), "--streams", "30", "--ramp", "2", "--hold", "3",
                        "--fake-llm", f"http://127.0.0.1:{fake_port}", "--database-url", postgres_database,
                        "--server-pid", str(server.pid), "--out", str(out)], env=env, check=True, timeout=240)
        result: dict[str, Any] = json.loads(out.read_text())
    finally:
        assert run.stop(server) == 0, (tmp_path / "gunicorn.log").read_text()[-3000:]
        run.stop(fake)
    assert result["errors"] == 0, result["error_kinds"]
    assert result["answered"] >= 30 and result["client_max_open_streams"] == 30
    assert result["storage"]["exactly_once"], result["storage"]
    assert result["storage"]["questions_checked"] == result["questions"]
    assert result["added_first_token_ms"]["n"] == result["answered"]  # every answer came from the model server
