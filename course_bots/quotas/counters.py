"""Fixed-window counters for the fair-use limits: in Redis when configured (shared by every worker), else here.

Redis is optional and may fail: :class:`Counters` then counts in this process (one limit per worker, documented
in docs/QUOTAS.md) and tries Redis again after ``retry_s``, so a Redis outage never stops the chat and never makes
every question wait for a connection timeout.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

logger = logging.getLogger(__name__)

PREFIX = "coursebots:quota:"


class MemoryCounters:
    """Counters in this process; each key expires after its time to live."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """An empty store reading time from ``clock``."""
        self._lock = threading.Lock()
        self._values: dict[str, tuple[int, float]] = {}
        self._clock = clock
        self._next_sweep = 0.0

    def incr(self, key: str, amount: int, ttl_s: int) -> int:
        """Add ``amount`` to ``key`` (created with ``ttl_s`` seconds to live); return the new value."""
        now = self._clock()
        with self._lock:
            self._sweep(now)
            value, expires = self._values.get(key, (0, 0.0))
            if expires <= now:
                value, expires = 0, now + ttl_s
            value += amount
            self._values[key] = (value, expires)
            return value

    def get(self, key: str) -> int:
        """The value of ``key`` (0 when unset or expired)."""
        with self._lock:
            value, expires = self._values.get(key, (0, 0.0))
        return value if expires > self._clock() else 0

    def _sweep(self, now: float) -> None:
        """Drop expired keys at most once a minute (the caller holds the lock)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60
        self._values = {k: v for k, v in self._values.items() if v[1] > now}


class RedisCounters:
    """Counters in Redis (``SET NX EX`` + ``INCRBY``), shared by every web worker."""

    def __init__(self, url: str) -> None:
        """A client with short timeouts: a slow Redis must not hold a student's question."""
        import redis  # only a deployment with COURSEBOTS_REDIS_URL needs the client

        self._client: Any = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def incr(self, key: str, amount: int, ttl_s: int) -> int:
        """Add ``amount`` to ``key`` (expiring after ``ttl_s``); return the new value."""
        pipe = self._client.pipeline()
        pipe.set(PREFIX + key, 0, ex=ttl_s, nx=True)  # the window's key is born with its expiry (any Redis >= 2.6)
        pipe.incrby(PREFIX + key, amount)
        _, value = pipe.execute()
        return int(value)

    def get(self, key: str) -> int:
        """The value of ``key`` (0 when unset)."""
        value = self._client.get(PREFIX + key)
        return int(value) if value is not None else 0


class Counters:
    """Redis counters when configured, the process's own while Redis is unset or unreachable."""

    def __init__(self, redis_url: str = "", clock: Callable[[], float] = time.time, retry_s: float = 30.0) -> None:
        """Counters for ``redis_url`` (empty: this process only), reading time from ``clock``."""
        self.clock = clock
        self.memory = MemoryCounters(lambda: self.clock())
        self.redis: RedisCounters | None = RedisCounters(redis_url) if redis_url else None
        self.retry_s = retry_s
        self._redis_down_until = 0.0

    @property
    def backend(self) -> str:
        """Where counts go now: ``redis`` or ``process``."""
        return "redis" if self.redis is not None and time.monotonic() >= self._redis_down_until else "process"

    def incr(self, key: str, amount: int, ttl_s: int) -> int:
        """Add ``amount`` to ``key``; return the new value."""
        if self.backend == "redis":
            try:
                return self.redis.incr(key, amount, ttl_s)  # type: ignore[union-attr]
            except Exception as exc:  # Redis down: keep limiting in this process, keep the chat working
                self._fail(exc)
        return self.memory.incr(key, amount, ttl_s)

    def get(self, key: str) -> int:
        """The value of ``key``."""
        if self.backend == "redis":
            try:
                return self.redis.get(key)  # type: ignore[union-attr]
            except Exception as exc:  # as in incr
                self._fail(exc)
        return self.memory.get(key)

    def _fail(self, exc: Exception) -> None:
        """Count in this process for ``retry_s`` seconds (logged once per outage, without the URL)."""
        self._redis_down_until = time.monotonic() + self.retry_s
        logger.warning("fair-use limits counted in this process: Redis unavailable (%s)", type(exc).__name__)
