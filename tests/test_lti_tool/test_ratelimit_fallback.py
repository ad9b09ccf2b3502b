"""The LTI rate limit keeps limiting while Redis is down: counted in the process, back in Redis once it answers."""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade

from coursebots_tests_lti_platform import FakePlatform  # loaded by conftest.py
from lti_tool import ratelimit
from lti_tool.extensions import db

FROZEN = 1_700_000_010.0  # inside one rate window


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_down_app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    """An app with the default limit (60/minute) whose Redis URL points at a closed port."""
    application = make_app(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    with application.app_context():
        upgrade()
    application.extensions[ratelimit.EXTENSION].clock = lambda: FROZEN
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_61st_login_from_one_address_is_refused_while_redis_is_down(
        redis_down_app: Flask, platform: FakePlatform, caplog: pytest.LogCaptureFixture) -> None:
    platform.register(redis_down_app)
    client = redis_down_app.test_client()
    params = {**platform.login_params(), "lti1p3_new_window": "1"}
    with caplog.at_level(logging.WARNING, logger=ratelimit.__name__):
        answers = [client.post("/lti/login", data=params).status_code for _ in range(61)]
    assert answers[:60] == [302] * 60
    assert answers[60] == 429
    warnings = [r for r in caplog.records if r.name == ratelimit.__name__]
    assert len(warnings) == 1 and "per process" in warnings[0].getMessage()  # one line per outage, not per login


class FlakyCounters(ratelimit.MemoryCounters):
    """Shared counters that fail while ``down`` is set (Redis restarting)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def incr(self, key: str, window: int, seconds: int) -> int:
        """Count, or fail like an unreachable Redis."""
        self.calls += 1
        if self.down:
            raise ConnectionError("Redis is restarting")
        return super().incr(key, window, seconds)


def test_while_redis_is_down_it_is_not_asked_on_every_request() -> None:
    shared = FlakyCounters()
    shared.down = True
    limiter = ratelimit.RateLimiter(ratelimit.Rate(3, 60), shared, clock=lambda: FROZEN)
    answers = [limiter.hit("login", "203.0.113.9") for _ in range(4)]
    assert answers[:3] == [None] * 3 and answers[3] is not None  # the 4th of 3 is refused meanwhile
    assert shared.calls == 1


def test_the_shared_store_counts_again_once_it_is_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "REDIS_RETRY_SECONDS", 0.0)  # ask Redis again at the next request
    shared = FlakyCounters()
    shared.down = True
    limiter = ratelimit.RateLimiter(ratelimit.Rate(3, 60), shared, clock=lambda: FROZEN)
    assert limiter.hit("login", "203.0.113.9") is None
    shared.down = False
    assert limiter.hit("login", "203.0.113.9") is None
    assert shared.calls == 2 and shared.incr("login:203.0.113.9", int(FROZEN // 60), 60) == 2  # counted there
