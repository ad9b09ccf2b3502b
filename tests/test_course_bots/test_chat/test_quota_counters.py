"""The fair-use counters: fixed windows in the process, shared counts in Redis, and the process's own counts
while Redis is down (a test points the client at a closed port mid-way)."""
from __future__ import annotations

import secrets

import pytest

from course_bots.quotas.counters import Counters, MemoryCounters, RedisCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_memory_counters_count_and_expire_with_their_time_to_live() -> None:
    clock = Clock()
    counters = MemoryCounters(clock)
    assert [counters.incr("a", 1, 60) for _ in range(3)] == [1, 2, 3]
    assert counters.incr("tokens", 250, 60) == 250 and counters.get("tokens") == 250
    assert counters.get("missing") == 0
    clock.now += 60
    assert counters.get("a") == 0 and counters.incr("a", 1, 60) == 1  # a new window starts at zero


def test_without_redis_counts_stay_in_the_process() -> None:
    counters = Counters("", clock=Clock())
    assert counters.backend == "process"
    assert counters.incr("k", 2, 60) == 2 and counters.get("k") == 2


@pytest.mark.redis
def test_redis_counters_are_shared_by_every_worker(redis_url: str) -> None:
    key = "test:" + secrets.token_hex(4)
    first, second = Counters(redis_url), Counters(redis_url)  # two web workers
    assert first.incr(key, 1, 60) == 1 and second.incr(key, 1, 60) == 2
    assert first.get(key) == 2 and first.backend == "redis"
    ttl = first.redis._client.ttl("coursebots:quota:" + key)  # type: ignore[union-attr]
    assert 0 < ttl <= 60


@pytest.mark.redis
def test_when_redis_goes_down_the_process_counts_and_nothing_fails(redis_url: str) -> None:
    key = "test:" + secrets.token_hex(4)
    counters = Counters(redis_url, retry_s=3600)
    assert counters.incr(key, 1, 60) == 1
    counters.redis = RedisCounters("redis://127.0.0.1:1/15")  # Redis stops answering mid-way
    assert counters.incr(key, 1, 60) == 1  # counted again from zero, in this process
    assert counters.backend == "process"
    assert counters.incr(key, 1, 60) == 2 and counters.get(key) == 2
