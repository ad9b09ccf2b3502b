"""Web-worker CPU per streamed token: the OpenAI-compatible backend alone, and the whole chat view, old and new.

``python bench/load/token_cost.py --questions 40 --rounds 3``: starts bench/load/fake_llm.py (no pauses: every
token is sent at once) in its own process, so only this process's CPU (``time.process_time``) is counted, then

* ``backend``: streams answers through :class:`course_bots.llm.openai_backend.OpenAIBackend`;
* ``chat view``: posts questions to ``/api/v1/bots/<id>/chat`` with the Flask test client and reads the
  server-sent events as they stream (quota, storing, search stubbed with one passage, prompt, echo guard with
  the default teacher prompt, SSE formatting, the usage meter), the backend being the same real one.

Per token is the marginal cost: (CPU of a 200-token answer - CPU of a 10-token answer) / 190, so the per-question
work (storing, prompt) is not spread over the tokens; the per-question CPU of a 200-token answer is shown too.

``old`` is the code before issue 15's per-token work: the SDK parsing every chunk into pydantic objects, and
the view's SSE formatter, usage meter and echo guard trim as they were (kept below, swapped in for the old
rows). ``new`` is the checkout's. Rounds alternate old and new; the table gives the median over rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.load.run import free_port, wait_for  # noqa: E402
from course_bots.llm.base import (DoneEvent, Event, GenerationParams, Message, StatusEvent, TokenEvent,  # noqa: E402
                                  Usage)
from course_bots.llm.openai_backend import OpenAIBackend, StreamCut  # noqa: E402

LONG, SHORT = 200, 10
ASK = [{"role": "system", "content": "You are a helpful course assistant."},
       {"role": "user", "content": "What does the learning rate control?"}]


class OldBackend(OpenAIBackend):
    """The backend as it was: the SDK's stream parses every chunk into a ``ChatCompletionChunk``."""

    def _attempt(self, rid: str, messages: Sequence[Message], params: GenerationParams,
                 deadline: float, server: Any = None) -> Iterator[Event]:
        import httpx

        remaining = max(0.1, deadline - time.monotonic())
        client: Any = (server or self.servers[0]).client
        response = client.chat.completions.create(
            model=self.model, messages=[dict(m) for m in messages], stream=True,
            max_tokens=params.max_new_tokens, stream_options={"include_usage": True}, extra_body=None,
            timeout=httpx.Timeout(min(self.timeout_s, remaining), connect=self.connect_timeout_s),
            temperature=params.temperature, top_p=params.top_p)
        with self._lock:
            self._open[rid] = response
        finish, usage, generated, finished = "stop", Usage(), 0, False
        try:
            for chunk in response:
                if time.monotonic() > deadline:
                    yield DoneEvent("timeout", Usage(usage.prompt_tokens, generated))
                    return
                status = (chunk.model_extra or {}).get("coursebots_status")
                if status:
                    yield StatusEvent(str(status.get("state")), status.get("position"))
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        generated += 1
                        yield TokenEvent(choice.delta.content)
                    if choice.finish_reason:
                        finished = True
                        finish = str((chunk.model_extra or {}).get("coursebots_finish_reason")
                                     or choice.finish_reason)
        finally:
            response.close()
        if not finished:
            raise StreamCut("the stream ended without a finish reason")
        yield DoneEvent(finish, usage if usage.completion_tokens else Usage(usage.prompt_tokens, generated))


def old_sse(name: str, data: dict[str, Any]) -> str:
    """The SSE formatter as it was."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def old_metered(events: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The usage meter as it was (its checks in their old order)."""
    from course_bots.chat.usage import _answered
    from lti_tool import metrics

    started, first_token, fallback, outcome, asked = time.monotonic(), True, False, None, False
    metrics.OPEN_STREAMS.inc()
    try:
        for name, data in events:
            if name == "status" and data.get("state") == "started":
                asked = True
                metrics.QUESTIONS.inc()
            elif name == "status" and data.get("state") == "fallback":
                fallback = True
                metrics.BACKEND_ERRORS.labels(code="fallback").inc()
            elif name == "token" and first_token:
                first_token = False
                metrics.FIRST_TOKEN.observe(time.monotonic() - started)
            elif name == "error" and outcome is None:
                outcome = "error"
                metrics.BACKEND_ERRORS.labels(code=str(data.get("code") or "unknown")[:32]).inc()
            elif name == "done" and outcome is None and asked:
                outcome = _answered(data.get("message_id"), fallback)
            yield name, data
    except Exception:
        outcome = outcome or "error"
        raise
    finally:
        metrics.OPEN_STREAMS.dec()
        if asked:
            metrics.ANSWER_SECONDS.observe(time.monotonic() - started)
            metrics.ANSWERS.labels(outcome=outcome or "cancelled").inc()


def start_fake(tokens: int) -> tuple[subprocess.Popen[bytes], str]:
    """The fake model server in its own process, sending ``tokens`` tokens without pauses."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench/load/fake_llm.py"), "--port", str(port),
                                "--tokens", str(tokens), "--rate", "1e9", "--ttft", "0"])
    wait_for(f"http://127.0.0.1:{port}/stats", process, 30)
    return process, f"http://127.0.0.1:{port}/v1"


def cpu_per_question(run: Callable[[], int], questions: int) -> float:
    """CPU seconds of this process per call of ``run`` (which returns the tokens it read; checked)."""
    run()  # warm: connections, imports
    started = time.process_time()
    for _ in range(questions):
        run()
    return (time.process_time() - started) / questions


def backend_runner(backend: OpenAIBackend, tokens: int) -> Callable[[], int]:
    """One answer through the backend; returns its token count."""
    params = GenerationParams(max_new_tokens=tokens)

    def run() -> int:
        count = sum(1 for e in backend.stream(ASK, params) if isinstance(e, TokenEvent))
        assert count == tokens, count
        return count

    return run


class ChatView:
    """The Flask app on SQLite with one bot and a consenting student; questions go through the real view."""

    def __init__(self, folder: str) -> None:
        from flask_migrate import upgrade

        from lti_tool.app import create_app
        from lti_tool.config import Config

        config = Config(base_url="http://localhost:5000", secret_key="bench-secret-key-" + "x" * 32,
                        pseudonym_key="bench-pseudonym-key-" + "y" * 32, testing=True, embedding_model="hashing",
                        database_url=f"sqlite:///{folder}/bench.sqlite3", instance_path=f"{folder}/instance",
                        quota_student_burst_per_minute=0, quota_student_questions_per_day=0,
                        quota_student_tokens_per_day=0)
        self.app = create_app(config.resolved(f"{folder}/instance"))
        with self.app.app_context():
            upgrade()
            from course_bots.privacy import consent
            from lti_tool.extensions import db
            from tests.test_course_bots.conftest import bearer, make_bot, make_session

            bot = make_bot()
            student = make_session(bot)
            consent.record_consent(student, True, consent.current_notice(student.issuer, student.locale).version)
            db.session.commit()
            self.bot, self.headers = bot.id, bearer(student)
        self.client = self.app.test_client()
        self.asked = 0

    def runner(self, backend: OpenAIBackend, tokens: int) -> Callable[[], int]:
        """One question through the view, its events read as they stream; returns the token events read."""
        from course_bots import backends

        def run() -> int:
            backends.backend_for = lambda entry: backend
            self.asked += 1
            response = self.client.post(f"/api/v1/bots/{self.bot}/chat", headers=self.headers, buffered=False,
                                        json={"question": "What does the learning rate control?",
                                              "client_id": f"q-{self.asked}"})
            count, last = 0, ""
            for piece in response.response:
                text = piece.decode() if isinstance(piece, bytes) else piece
                count += text.startswith("event: token")
                last = text
            response.close()
            assert last.startswith("event: done"), last[:200]
            assert count == tokens, count
            return count

        return run


def use_old_view(old: bool) -> None:
    """Swap the view's SSE formatter and usage meter for the old ones (or back)."""
    from course_bots.chat import api, usage

    if not hasattr(api, "_bench_new"):
        api._bench_new = (api.sse, usage.metered)  # type: ignore[attr-defined]
    new_sse, new_metered = api._bench_new  # type: ignore[attr-defined]
    api.sse = old_sse if old else new_sse
    usage.metered = old_metered if old else new_metered


def search_stub(bot_id: int, query: str, k: int) -> list[Any]:
    """One well-scoring passage, so that every question is answered by the model."""
    from retrieval.types import Chunk, Locator, SearchHit

    text = ("Gradient descent updates the weights in the direction of the negative gradient. "
            "The learning rate controls the step size.")
    return [SearchHit(Chunk("c1", "7", "Lecture 3.pdf", text, position=4, position_end=4, locator=Locator.PAGE),
                      0.9, rank=1)]


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=40, help="answers per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating old/new rounds (median reported)")
    parser.add_argument("--only", choices=("old", "new"), help="measure one path only")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    from course_bots.chat import operations

    operations.default_search = search_stub
    servers = {n: start_fake(n) for n in (LONG, SHORT)}
    paths = [args.only] if args.only else ["old", "new"]
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            view = ChatView(folder)
            for _round in range(args.rounds):
                for path in paths:
                    kind = OldBackend if path == "old" else OpenAIBackend
                    backends = {n: kind(servers[n][1], "fake", retries=0) for n in (LONG, SHORT)}
                    long = cpu_per_question(backend_runner(backends[LONG], LONG), args.questions)
                    short = cpu_per_question(backend_runner(backends[SHORT], SHORT), args.questions)
                    results.setdefault((path, "backend"), []).append((long, short))
                    use_old_view(path == "old")
                    with view.app.app_context():
                        long = cpu_per_question(view.runner(backends[LONG], LONG), args.questions)
                        short = cpu_per_question(view.runner(backends[SHORT], SHORT), args.questions)
                    use_old_view(False)
                    results.setdefault((path, "chat view"), []).append((long, short))
                    for backend in backends.values():
                        backend.close()
    finally:
        for process, _url in servers.values():
            process.terminate()
            process.wait()
    print(f"| path | measured | CPU µs per token | CPU ms per {LONG}-token question |")
    print("|---|---|---:|---:|")
    for what in ("backend", "chat view"):
        for path in paths:
            runs = results[(path, what)]
            per_token = statistics.median((long - short) / (LONG - SHORT) for long, short in runs) * 1e6
            per_question = statistics.median(long for long, _short in runs) * 1e3
            print(f"| {path} | {what} | {per_token:.1f} | {per_question:.2f} |")


if __name__ == "__main__":
    main()
