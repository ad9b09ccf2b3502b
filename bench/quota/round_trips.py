"""Redis round trips the fair-use gate costs per question: ``check_quota`` before it, ``after_answer`` after it.

    python bench/quota/round_trips.py [--redis-url redis://127.0.0.1:6379/13] [--questions 50]

Runs the real app in this process (SQLite in a temporary folder, extractive answers, Redis at ``--redis-url``)
and posts questions through ``/api/v1/bots/<id>/chat`` as one student, twice: with the kinds of limits a fresh
installation has (burst, questions and tokens per day; burst and questions raised so that every question passes),
and with every limit there is (also the platform's daily budget of questions and tokens and the model catalogue's
``requests_per_minute``). Round trips are counted on the client (``send_packed_command`` of redis-py's
connections: a pipeline or a script is one), only while the chat's ``check_quota`` and ``after_answer`` run, with
the CPU (``time.process_time``) and wall time spent in them; the commands they sent are listed by name. The keys
it made (a random issuer, student and model) are deleted at the end.
"""
from __future__ import annotations

import argparse
import collections
import logging
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from redis.connection import AbstractConnection  # noqa: E402

from course_bots import backends  # noqa: E402
from course_bots.chat import operations as chat, quota  # noqa: E402
from course_bots.llm.extractive import ExtractiveBackend  # noqa: E402
from course_bots.models import CourseBot  # noqa: E402
from course_bots.privacy import consent  # noqa: E402
from course_bots.quotas import operations as quotas  # noqa: E402
from course_bots.settings.operations import settings_for_update  # noqa: E402
from lti_tool import create_app  # noqa: E402
from lti_tool.config import Config  # noqa: E402
from lti_tool.context import SessionToken, issue_token  # noqa: E402
from lti_tool.extensions import db  # noqa: E402
from retrieval.types import Chunk, Locator, SearchHit  # noqa: E402

COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


class Tally:
    """Round trips and command names sent while ``active``."""

    def __init__(self) -> None:
        """Nothing counted yet."""
        self.active, self.phase = False, ""
        self.trips: collections.Counter[str] = collections.Counter()
        self.commands: collections.Counter[str] = collections.Counter()
        self.cpu_s: dict[str, float] = collections.defaultdict(float)
        self.wall_s: dict[str, float] = collections.defaultdict(float)

    def install(self) -> None:
        """Count every packed command redis-py's connections send (one send: one round trip)."""
        send = AbstractConnection.send_packed_command
        tally = self

        def counted(connection: Any, command: Any, check_health: bool = True) -> None:
            if tally.active:
                tally.trips[tally.phase] += 1
                data = command if isinstance(command, (bytes, str)) else b"".join(bytes(part) for part in command)
                data = data.encode() if isinstance(data, str) else data
                for name in COMMAND.findall(data):
                    tally.commands[f"{tally.phase} {name.decode().upper()}"] += 1
            send(connection, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

    def wrap(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, counted under ``phase`` while it runs."""
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.active, self.phase = True, phase
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.active = False
                self.cpu_s[phase] += time.process_time() - cpu
                self.wall_s[phase] += time.perf_counter() - wall
        return counted


def scenario(redis_url: str, questions: int, every_limit: bool, tally: Tally) -> Iterator[str]:
    """Ask ``questions`` questions as one student; yield the per-question figures."""
    folder = Path(tempfile.mkdtemp(prefix="quota-trips-"))
    model = "bench-" + secrets.token_hex(4)
    catalogue = folder / "models.toml"
    catalogue.write_text(f'[[models]]\nkey = "{model}"\nlabel = "M"\nkind = "local"\nmodel = "m"\n'
                         'context_window = 4096\nrequests_per_minute = 1000\n', encoding="utf-8")
    config = Config(secret_key="s" * 48, pseudonym_key="p" * 48, embedding_model="hashing", testing=True,
                    quota_student_burst_per_minute=10 ** 6, quota_student_questions_per_day=10 ** 6,
                    redis_url=redis_url, model_catalogue=str(catalogue) if every_limit else "",
                    database_url=f"sqlite:///{folder / 'db.sqlite3'}", instance_path=str(folder)).resolved(str(folder))
    app = create_app(config)

    backends.backend_for = lambda entry: ExtractiveBackend()  # no model weights here
    chat.default_search = _one_hit  # an answer from a source: it has model tokens to count
    issuer = f"https://bench-{secrets.token_hex(4)}.example"
    pseudonym = secrets.token_hex(32)
    with app.app_context():
        upgrade()
        bot = CourseBot(issuer=issuer, deployment_id="1", context_id="trips", title="trips")
        db.session.add(bot)
        db.session.commit()
        if every_limit:
            settings_for_update(bot.id, "en").model_key = model
            quotas.set_platform_rule(issuer, "platform", {"questions_per_day": 10000, "tokens_per_day": 10 ** 8})
            db.session.commit()
        now = int(time.time())
        token = SessionToken(issuer=issuer, deployment_id="1", bot_id=bot.id, pseudonym=pseudonym,
                             roles=("learner",), locale="de-DE", expires_at=now + 3600, launched_at=now)
        consent.record_consent(token, True, consent.current_notice(issuer, "de-DE").version)
        db.session.commit()
        headers = {"Authorization": "Bearer " + issue_token(config.secret_key, token)}
        client = app.test_client()
        check, after = quota.check_quota, quota.after_answer
        quota.check_quota = tally.wrap("check_quota", check)
        quota.after_answer = tally.wrap("after_answer", after)
        answered: list[int] = []
        try:
            client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers,  # warm-up: connect, load the scripts
                        json={"question": "Wann ist die Klausur?", "client_id": "warm"}).get_data()
            for counted in (tally.trips, tally.commands, tally.cpu_s, tally.wall_s):
                counted.clear()
            for n in range(questions):
                response = client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers,
                                       json={"question": "Wann ist die Klausur?", "client_id": f"q{n}"})
                body = response.get_data(as_text=True)
                assert response.status_code == 200, body
                answered.extend(int(m) for m in re.findall(r'"message_id": ?(\d+)', body))
        finally:
            quota.check_quota, quota.after_answer = check, after
            _clean(redis_url, [pseudonym, quotas._digest(issuer), quotas._digest(model)], bot.id)
        label = "every limit" if every_limit else "default limits"
        for phase in ("check_quota", "after_answer"):
            per = {name: counter[phase] / questions for name, counter in
                   (("trips", tally.trips), ("cpu", tally.cpu_s), ("wall", tally.wall_s))}
            yield (f"{label}: {phase} per question: {per['trips']:g} round trips, {per['cpu'] * 1000:.2f} ms CPU, "
                   f"{per['wall'] * 1000:.2f} ms")
        for name, count in sorted(tally.commands.items()):
            yield f"    {name}: {count / questions:g} per question"


def _one_hit(bot_id: int, query: str, k: int) -> list[Any]:
    """One source that covers every question (no index needed)."""

    chunk = Chunk("c1", "7", "Lecture 3.pdf", "Die Klausur ist am 12. Februar um 10 Uhr im Hörsaal 1.",
                  position=4, position_end=4, locator=Locator.PAGE)
    return [SearchHit(chunk, 0.9, rank=1)]


def _clean(redis_url: str, parts: list[str], bot_id: int) -> None:
    """Delete the keys this run made (its student, issuer and model are random; answers are counted per bot)."""
    client = redis.Redis.from_url(redis_url)
    for part in parts:
        for key in client.scan_iter(f"coursebots:quota:*{part}*"):
            client.delete(key)
    for key in client.scan_iter(f"coursebots:quota:tokens_counted:{bot_id}:*"):
        client.delete(key)


def main() -> None:
    """Count, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the app's request log would bury the figures
    tally = Tally()
    tally.install()
    for every_limit in (False, True):
        for line in scenario(args.redis_url, args.questions, every_limit, tally):
            print(line)


if __name__ == "__main__":
    main()
