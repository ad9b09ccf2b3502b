"""Limits that simultaneous questions cannot overrun: 20 threads asking at once at a limit of 5 get exactly 5
answers, a refused question counts nowhere, an answer's tokens are added once and atomically, and the gate costs
one Redis round trip before the answer and one after it. Each runs in the process and against real Redis (its
own key prefix, deleted afterwards)."""
from __future__ import annotations

import json
import secrets
import threading
from typing import Any, Callable, Iterator, TypeVar

import pytest
from flask import Flask
from redis.connection import AbstractConnection
from sqlalchemy import select

from course_bots import backends
from course_bots.chat import operations as chat
from course_bots.chat import quota
from course_bots.llm.extractive import ExtractiveBackend
from course_bots.models import CourseBot
from course_bots.quotas import operations as quotas
from course_bots.quotas.counters import Counters, RedisCounters, Window
from course_bots.quotas.models import BotQuota, QuotaHit
from course_bots.quotas.operations import EXTENSION
from lti_tool.extensions import current_config, db

from tests.test_course_bots.conftest import make_bot, make_session
from tests.test_course_bots.test_chat.test_quota import consented, fake_search

STORES = ["process", pytest.param("redis", marks=pytest.mark.redis)]
THREADS = 20
T = TypeVar("T")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[Counters]:
    """Counters in this process, or in Redis under a prefix of this test's own (its keys deleted afterwards)."""
    counters = Counters("")
    if request.param == "process":
        yield counters
        return
    redis_store = RedisCounters(request.getfixturevalue("redis_url"), prefix=f"test:quota:{secrets.token_hex(6)}:")
    counters.redis = redis_store
    yield counters
    client = redis_store._client
    for key in client.scan_iter(redis_store.prefix + "*"):
        client.delete(key)
    assert counters.backend == "redis"  # nothing fell back to the process unnoticed


def at_once(task: Callable[[int], T], threads: int = THREADS) -> list[T]:
    """Run ``task(0..threads-1)`` in as many threads released together; their results in order."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def run(number: int) -> None:
        barrier.wait()
        results[number] = task(number)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def test_twenty_at_once_at_a_daily_limit_of_five_get_exactly_five(store: Counters) -> None:
    day = Window("day", 3600, limit=5, first_only=True)
    outcomes = at_once(lambda n: store.reserve([Window("burst", 120), day], f"asked:{n}", 3600).allowed)
    assert outcomes.count(True) == 5
    assert store.get("day") == 5 and store.get("burst") == 5  # the 15 refused counted nowhere


def test_twenty_at_once_at_a_burst_of_five_get_exactly_five(store: Counters) -> None:
    burst = Window("burst", 120, limit=5)
    outcomes = at_once(lambda n: store.reserve([burst, Window("day", 3600, first_only=True)]).refused)
    assert outcomes.count(None) == 5 and outcomes.count(burst) == 15
    assert store.get("burst") == 5 and store.get("day") == 5


def test_a_refused_request_reserves_nothing(store: Counters) -> None:
    burst, day = Window("burst", 120, limit=10), Window("day", 3600, limit=2, first_only=True)
    tokens = Window("tokens", 3600, limit=100, amount=0, first_only=True)
    assert [store.reserve([burst, day, tokens]).allowed for _ in range(2)] == [True, True]
    refused = store.reserve([burst, day, tokens])
    assert refused.refused == day and not refused.allowed
    assert (store.get("burst"), store.get("day"), store.get("tokens")) == (2, 2, 0)  # checked, not counted
    assert store.reserve([Window("other", 120)], "asked", 3600).allowed  # a fresh window still counts
    store.add_once("", 0, [Window("tokens", 3600, amount=100)])
    assert store.reserve([Window("burst2", 120), tokens]).refused == tokens
    assert store.get("burst2") == 0


def test_a_repeat_skips_the_day_but_counts_the_burst(store: Counters) -> None:
    windows = [Window("burst", 120, limit=5), Window("day", 3600, limit=1, first_only=True)]
    first, again = (store.reserve(windows, "asked:c1", 3600) for _ in range(2))
    assert first.allowed and not first.repeated and again.allowed and again.repeated
    assert store.get("day") == 1 and store.get("burst") == 2
    assert store.reserve(windows, "asked:c2", 3600).refused == windows[1]  # a new question: the day is full


def test_simultaneous_answers_add_their_tokens_exactly_once_each(store: Counters) -> None:
    store.incr("day", 3, 3600)
    tokens = Window("tokens", 3600, amount=250)
    reads = at_once(lambda n: store.add_once(f"answer:{n % 10}", 3600, [tokens], read="day"))
    assert store.get("tokens") == 10 * 250  # 20 requests, 10 answers: each counted once, none lost
    assert reads == [3] * THREADS
    assert store.add_once("", 0, [], read="missing") == 0


def test_the_process_takes_over_reserving_when_redis_stops() -> None:
    counters = Counters("", retry_s=3600)
    counters.redis = RedisCounters("redis://127.0.0.1:1/15")  # nothing listens there
    day = Window("day", 3600, limit=1)
    assert counters.reserve([day]).allowed and counters.backend == "process"
    assert counters.reserve([day]).refused == day  # still limited, in this process
    assert counters.add_once("answer:1", 3600, [Window("tokens", 3600, amount=7)], read="day") == 1
    assert counters.get("tokens") == 7


@pytest.fixture
def chat_app(app: Flask, store: Counters, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The app on ``store``'s counters, answering from one fake source."""
    monkeypatch.setattr(chat, "default_search", fake_search)
    monkeypatch.setattr(backends, "backend_for", lambda entry: ExtractiveBackend())
    monkeypatch.setitem(app.extensions, EXTENSION, store)
    yield app


def ask_at_once(app: Flask, bot_id: int, **override: int) -> list[quotas.Decision]:
    """One student's 20 questions through the chat's gate at the same moment (each thread its own request)."""
    with app.app_context():
        db.session.add(BotQuota(bot_id=bot_id, role="learner", **override))
        db.session.commit()
        bot = db.session.get(CourseBot, bot_id)
        assert bot is not None
        session = make_session(bot)

    def ask(number: int) -> quotas.Decision:
        with app.app_context():
            try:
                return quota.check_quota(session, bot_id, "en", client_id=f"q{number}")
            finally:
                db.session.remove()

    return at_once(ask)


@pytest.mark.parametrize("app", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize(("override", "code"), [({"questions_per_day": 5}, "quota_exceeded"),
                                                ({"burst_per_minute": 5}, "rate_limited")])
def test_twenty_questions_at_once_through_the_chat_gate_get_five_answers(chat_app: Flask, override: dict[str, int],
                                                                         code: str) -> None:
    with chat_app.app_context():
        bot_id = make_bot().id
    decisions = ask_at_once(chat_app, bot_id, **override)
    assert sum(d.allowed for d in decisions) == 5
    assert {d.code for d in decisions if not d.allowed} == {code}
    with chat_app.app_context():
        bot = db.session.get(CourseBot, bot_id)
        assert bot is not None
        left = quotas.status(make_session(bot), bot_id)["questions_left"]
        assert left == (0 if "questions_per_day" in override else 95)  # 5 counted against the day, not 20
        assert sum(db.session.scalars(select(QuotaHit.hits))) == 15  # every refusal kept for the teacher


class RoundTrips:
    """Counts what redis-py sends (one send: one round trip) while the chat's gate runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counting, self.phase = False, ""
        self.trips: dict[str, int] = {"check_quota": 0, "after_answer": 0}
        send = AbstractConnection.send_packed_command

        def counted(connection: Any, command: Any, check_health: bool = True) -> None:
            if self.counting:
                self.trips[self.phase] += 1
            send(connection, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
        for phase in self.trips:
            monkeypatch.setattr(quota, phase, self.wrap(phase, getattr(quota, phase)))

    def wrap(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, its sends counted under ``phase``."""
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counting, self.phase = True, phase
            try:
                return function(*args, **kwargs)
            finally:
                self.counting = False
        return counted


@pytest.mark.redis
@pytest.mark.parametrize("store", [pytest.param("redis", marks=pytest.mark.redis)], indirect=True)
def test_a_question_costs_one_redis_round_trip_before_and_one_after(chat_app: Flask, store: Counters,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with chat_app.app_context():
        bot = make_bot()
        db.session.add(BotQuota(bot_id=bot.id, role="learner", questions_per_day=50))
        quotas.set_platform_rule(bot.issuer, "platform", {"questions_per_day": 1000, "tokens_per_day": 10 ** 6})
        db.session.commit()
        headers = consented(make_session(bot))
        client = chat_app.test_client()

        def ask(client_id: str) -> dict[str, Any]:
            response = client.post(f"/api/v1/bots/{bot.id}/chat", headers=headers,
                                   json={"question": "What does the learning rate control?", "client_id": client_id})
            body = response.get_data(as_text=True)
            assert response.status_code == 200, body
            return dict(json.loads(body.strip().split("\n\n")[-1].split("data: ", 1)[1]))

        ask("warm-up")  # connects and loads the scripts once per worker
        trips = RoundTrips(monkeypatch)
        done = [ask(f"q{n}") for n in range(3)]
        assert trips.trips == {"check_quota": 3, "after_answer": 3}  # burst, day, tokens, platform: one trip each
        assert [d["quota"]["questions_left"] for d in done] == [48, 47, 46]
        day = quotas._Clock(current_config(), store.clock()).day
        tokens = store.get(f"tokens:{bot.id}:{make_session(bot).pseudonym}:{day}")
        assert tokens > 0 and store.get(f"platform_tokens:{quotas._digest(bot.issuer)}:{day}") == tokens
