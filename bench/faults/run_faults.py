"""Fault runs: what students see when the model server, PostgreSQL, Redis or a tool process goes away mid-answer.

Everything is throwaway (``bench/faults/services.py``): a PostgreSQL cluster (pg_ctl, temporary directory, free
port), redis-server on a free port, the scripted streaming model server (``scripted_llm.py``: 30 words, 0.1 s
apart), the tool under gunicorn (``deploy/gunicorn.conf.py``, 2 gthread workers) and the supervised ingestion
worker (``flask --app lti_tool materials rq-worker``). Students ask over the real HTTP API and, like the page,
retry a question whose stream broke with the same ``client_id``. For each fault the run reports what students
saw (the SSE ``error`` texts, fallback answers, cut streams), whether every question is stored exactly once and
no answer twice, and whether the service recovered without a restart (a fresh question answered by the model).

Usage: ``python bench/faults/run_faults.py [--only model_kill,pg_restart,redis_stop,worker_kill,reload]
[--json out.json]`` (about three minutes).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.faults import services  # noqa: E402

MATERIAL = ("# Cells\n\n" + "Osmosis moves water through a membrane towards the higher concentration of solutes. "
            "Diffusion spreads particles from high to low concentration. " * 12)
QUESTIONS = ("What is osmosis?", "How does diffusion work?", "Why does water move through a membrane?",
             "What does the lecture say about solutes?")


@dataclass
class Attempt:
    """One request of one question: the events it got and how it ended."""

    events: list[str] = field(default_factory=list)
    text: str = ""
    error: tuple[str, str] | None = None  # (code, message) of an SSE error event or an HTTP error body
    status: int = 0
    cut: str = ""  # the stream broke without a final event (the exception's name)

    @property
    def answered(self) -> bool:
        """A ``done`` event arrived."""
        return "done" in self.events

    @property
    def fallback(self) -> bool:
        """The answer was extractive (the model unavailable)."""
        return "status:fallback" in self.events


@dataclass
class Question:
    """A question a student asked, with every attempt."""

    client_id: str
    attempts: list[Attempt] = field(default_factory=list)
    conversation_id: int | None = None


def ask(base: str, token: str, bot_id: int, question: str, client_id: str, conversation_id: int | None,
        timeout: float = 90.0) -> tuple[Attempt, int | None]:
    """POST one question and read its SSE stream to the end (or until it breaks)."""
    import httpx

    attempt = Attempt()
    body = {"question": question, "client_id": client_id, "conversation_id": conversation_id}
    try:
        with httpx.stream("POST", f"{base}/api/v1/bots/{bot_id}/chat", json=body, timeout=timeout,
                          headers={"Authorization": f"Bearer {token}"}) as response:
            attempt.status = response.status_code
            if response.status_code != 200:
                response.read()
                error = (response.json() or {}).get("error", {}) if response.content else {}
                attempt.error = (str(error.get("code")), str(error.get("message")))
                return attempt, conversation_id
            name = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    attempt.events.append(f"status:{data.get('state')}" if name == "status" else name)
                    conversation_id = data.get("conversation_id") or conversation_id
                    if name == "token":
                        attempt.text += data.get("text", "")
                    elif name == "error":
                        attempt.error = (str(data.get("code")), str(data.get("message")))
    except Exception as exc:  # the connection broke mid-stream (a killed worker) or was refused
        attempt.cut = type(exc).__name__
    if not attempt.answered and not attempt.error and not attempt.cut:
        attempt.cut = "stream ended without done"
    return attempt, conversation_id


def student(base: str, token: str, bot_id: int, count: int, out: list[Question], retries: int = 8,
            pause: float = 1.0) -> None:
    """Ask ``count`` questions in one conversation; retry a failed one with the same client id, as the page does."""
    conversation_id = None
    for i in range(count):
        question = Question(client_id=uuid.uuid4().hex)
        out.append(question)
        for _ in range(retries):
            attempt, conversation_id = ask(base, token, bot_id, QUESTIONS[i % len(QUESTIONS)], question.client_id,
                                           conversation_id)
            question.attempts.append(attempt)
            question.conversation_id = conversation_id
            if attempt.answered:
                break
            time.sleep(pause)


class Harness:
    """The services, the seeded course and the students' tokens."""

    def __init__(self, tmp: Path, students: int) -> None:
        self.tmp = tmp
        self.pg = services.Postgres(tmp)
        self.redis = services.redis_server(tmp)
        self.llm = services.scripted_llm()
        self.pg.start()
        self.redis.start()
        self.llm.start()
        self.env = {**os.environ, "COURSEBOTS_BASE_URL": "http://127.0.0.1", "PYTHONPATH": str(ROOT),
                    "COURSEBOTS_SECRET_KEY": secrets.token_urlsafe(32),
                    "COURSEBOTS_PSEUDONYM_KEY": secrets.token_urlsafe(32), "COURSEBOTS_DATABASE_URL": self.pg.url,
                    "COURSEBOTS_REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/0",
                    "COURSEBOTS_INSTANCE_PATH": str(tmp / "instance"), "COURSEBOTS_EMBEDDING_MODEL": "hashing",
                    "COURSEBOTS_LLM_BACKEND": "openai", "COURSEBOTS_LLM_MODEL": "scripted",
                    "COURSEBOTS_LLM_BASE_URL": f"http://127.0.0.1:{self.llm.port}/v1",
                    "COURSEBOTS_ANSWER_SCORE_THRESHOLD": "0", "COURSEBOTS_INGEST_THREADS": "0",
                    "COURSEBOTS_INGEST_STALE_SECONDS": "30", "COURSEBOTS_LTI_RATE_LIMIT": "",
                    "COURSEBOTS_QUOTA_STUDENT_BURST_PER_MINUTE": "0", "COURSEBOTS_QUOTA_STUDENT_QUESTIONS_PER_DAY": "0",
                    "COURSEBOTS_QUOTA_STUDENT_TOKENS_PER_DAY": "0", "COURSEBOTS_QUOTA_TEACHER_BURST_PER_MINUTE": "0",
                    "COURSEBOTS_QUOTA_PLATFORM_QUESTIONS_PER_DAY": "0", "COURSEBOTS_LOG_LEVEL": "WARNING"}
        subprocess.run([sys.executable, "-m", "flask", "--app", "lti_tool", "db", "upgrade"], env=self.env,
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("COURSEBOTS_")})
        self.app = self._seed(students)
        self.web = services.gunicorn(self.env, tmp / "gunicorn.log")
        self.web.start(120)
        self.worker = services.Process([sys.executable, "-m", "flask", "--app", "lti_tool", "materials", "rq-worker"],
                                       0, self.env, tmp / "worker.log")
        self.worker.start()
        self.base = f"http://127.0.0.1:{self.web.port}"
        self._warm()

    def _seed(self, students: int) -> Any:
        """A course with one ingested material, and session tokens for a teacher and the students."""
        from course_bots.materials import operations as svc
        from course_bots.materials.pipeline import process_material
        from course_bots.models import CourseBot
        from course_bots.privacy_rules import pseudonym
        from lti_tool import create_app
        from lti_tool.context import SessionToken, issue_token
        from lti_tool.extensions import current_config, db

        app = create_app()
        with app.app_context():
            bot = CourseBot(issuer="https://moodle.example", deployment_id="1", context_id="faults", title="Faults")
            db.session.add(bot)
            db.session.commit()
            material = svc.upload_material(bot.id, "cells.md", MATERIAL.encode()).material
            db.session.commit()
            process_material(material.id, "bench")
            config, now = current_config(), int(time.time())

            def token(sub: str, roles: tuple[str, ...]) -> str:
                claims = SessionToken(issuer=bot.issuer, deployment_id="1", bot_id=bot.id, roles=roles,
                                      pseudonym=pseudonym(config.pseudonym_key, bot.issuer, sub, bot.id),
                                      locale="en", expires_at=now + 7200, launched_at=now)
                return issue_token(config.secret_key, claims)

            self.bot_id = bot.id
            self.teacher = token("teacher", ("instructor",))
            self.students = [token(f"student-{i}", ("learner",)) for i in range(students)]
            db.session.remove()
        return app

    def _warm(self) -> None:
        """Everyone accepts the notice; both gunicorn workers answer once (the first request loads the index)."""
        import httpx

        for token in [self.teacher, *self.students]:
            headers = {"Authorization": f"Bearer {token}"}
            notice = httpx.get(f"{self.base}/api/v1/consent", headers=headers, timeout=30).json()
            httpx.post(f"{self.base}/api/v1/consent", headers=headers, timeout=30,
                       json={"accepted": True, "version": (notice.get("notice") or {}).get("version", 0)})
        for _ in range(4):
            ask(self.base, self.students[0], self.bot_id, "What is osmosis?", uuid.uuid4().hex, None)

    def probe(self) -> bool:
        """A fresh question answered by the model (not the extractive fallback)."""
        attempt, _ = ask(self.base, self.students[-1], self.bot_id, "What is osmosis?", uuid.uuid4().hex, None)
        return attempt.answered and not attempt.fallback and "Osmosis" in attempt.text

    def stored(self, client_ids: list[str]) -> dict[str, tuple[int, int, int]]:
        """Per client id: (stored questions, stored ok answers, stored failed answers)."""
        from sqlalchemy import text

        from lti_tool.extensions import db

        rows: dict[str, tuple[int, int, int]] = {}
        with self.app.app_context():
            for cid in client_ids:
                ids = db.session.execute(text("SELECT id FROM message WHERE role = 'user' AND client_message_id = :c"),
                                         {"c": cid}).scalars().all()
                ok = failed = 0
                for qid in ids:
                    for status, n in db.session.execute(text(
                            "SELECT status, count(*) FROM message WHERE role = 'assistant' AND reply_to_id = :q "
                            "GROUP BY status"), {"q": qid}):
                        ok += n if status == "ok" else 0
                        failed += n if status != "ok" else 0
                rows[cid] = (len(ids), ok, failed)
            db.session.remove()
            db.engine.dispose()
        return rows

    def close(self) -> None:
        """Stop everything this run started."""
        for process in (self.worker, self.web, self.llm, self.redis):
            process.stop()
        self.pg.stop()


def run(harness: Harness, name: str, fault: Callable[[], None], recover: Callable[[], None] | None,
        down_s: float, students: int = 4, questions: int = 3, extra: Callable[[], dict[str, Any]] | None = None
        ) -> dict[str, Any]:
    """Students ask while ``fault`` strikes 1.5 s in (mid-answer) and ``recover`` comes ``down_s`` later."""
    asked: list[list[Question]] = [[] for _ in range(students)]
    threads = [threading.Thread(target=student, args=(harness.base, harness.students[i], harness.bot_id, questions,
                                                      asked[i])) for i in range(students)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    fault()
    extra_result: dict[str, Any] = {}
    if extra is not None:
        extra_result = extra()
    if recover is not None:
        time.sleep(down_s)
        recover()
    for thread in threads:
        thread.join(300)
    recovered_after = None
    started = time.monotonic()
    while time.monotonic() - started < 90:
        if harness.probe():
            recovered_after = time.monotonic() - started
            break
        time.sleep(2)
    all_questions = [q for per in asked for q in per]
    stored = harness.stored([q.client_id for q in all_questions])
    seen = collections.Counter()
    for q in all_questions:
        for a in q.attempts:
            if a.error:
                seen[f"error {a.error[0]}: {a.error[1]}"] += 1
            if a.cut:
                seen[f"stream cut ({a.cut})"] += 1
            if a.fallback and a.answered:
                seen["fallback answer (quoted passages)"] += 1
    result = {
        "fault": name, "questions": len(all_questions),
        "attempts": sum(len(q.attempts) for q in all_questions),
        "answered": sum(1 for q in all_questions if q.attempts and q.attempts[-1].answered),
        "answered_first_try": sum(1 for q in all_questions if q.attempts and q.attempts[0].answered
                                  and not q.attempts[0].fallback),
        "seen": dict(seen),
        "questions_stored_once": sum(1 for v in stored.values() if v[0] == 1),
        "questions_stored_twice_or_more": sum(1 for v in stored.values() if v[0] > 1),
        "questions_not_stored": sum(1 for v in stored.values() if v[0] == 0),
        "answers_duplicated": sum(1 for v in stored.values() if v[1] > 1),
        "failed_answers_stored": sum(v[2] for v in stored.values()),
        "recovered_without_restart": recovered_after is not None,
        "seconds_to_model_answer_after_run": None if recovered_after is None else round(recovered_after, 1),
        **extra_result,
    }
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result


def upload_while_down(harness: Harness) -> Callable[[], dict[str, Any]]:
    """A teacher uploads a file while Redis is down; the worker must pick it up once Redis is back."""
    def upload() -> dict[str, Any]:
        import httpx

        response = httpx.post(f"{harness.base}/api/v1/bots/{harness.bot_id}/materials", timeout=30,
                              headers={"Authorization": f"Bearer {harness.teacher}"},
                              files={"file": ("during-outage.md", ("# Outage\n\nUploaded while Redis was down. "
                                                                   * 20).encode(), "text/markdown")})
        harness.upload_status = response.status_code
        return {"upload_while_redis_down_http": response.status_code}
    return upload


def material_ready(harness: Harness, filename: str, timeout: float = 90.0) -> float | None:
    """Seconds until the material is ready (None: not within ``timeout``)."""
    from sqlalchemy import text

    from lti_tool.extensions import db

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with harness.app.app_context():
            status = db.session.execute(text("SELECT status FROM material WHERE filename = :f"),
                                        {"f": filename}).scalar()
            db.session.remove()
        if status == "ready":
            return time.monotonic() - started
        time.sleep(1)
    return None


def main() -> None:
    """Run the faults in order and print one JSON line per fault (and ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="reload,worker_kill,model_kill,pg_restart,redis_stop")
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    os.chmod(tmp, 0o755)
    harness = Harness(tmp, args.students + 1)
    results = []
    try:
        for name in args.only.split(","):
            if name == "reload":  # rolling restart: gunicorn replaces its workers, open answers finish first
                results.append(run(harness, "tool reload (SIGHUP, rolling restart) mid-answer",
                                   lambda: harness.web.signal(signal.SIGHUP), None, 0))
            elif name == "worker_kill":  # the tool's processes die mid-answer (SIGKILL every gunicorn worker)
                def kill_workers() -> None:
                    assert harness.web.process is not None
                    for pid in services.gunicorn_workers(harness.web.process.pid):
                        os.kill(pid, signal.SIGKILL)
                results.append(run(harness, "tool processes killed (SIGKILL) mid-answer", kill_workers, None, 0))
            elif name == "model_kill":
                results.append(run(harness, "model server killed mid-stream, back after 5 s", harness.llm.kill,
                                   harness.llm.start, 5))
            elif name == "pg_restart":
                results.append(run(harness, "PostgreSQL restarted (pg_ctl restart -m fast) during traffic",
                                   harness.pg.restart, None, 0))
            elif name == "redis_stop":
                row = run(harness, "Redis stopped for 8 s (comes back empty)", harness.redis.kill,
                          harness.redis.start, 8, extra=upload_while_down(harness))
                row["file_uploaded_during_outage_ready_after_s"] = material_ready(harness, "during-outage.md")
                print(json.dumps({"file_uploaded_during_outage_ready_after_s":
                                  row["file_uploaded_during_outage_ready_after_s"]}), flush=True)
                results.append(row)
    finally:
        harness.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"logs: {tmp}" if args.keep else "", flush=True)


if __name__ == "__main__":
    main()
