"""Fixed-window counters for the fair-use limits: in Redis when configured (shared by every worker), else here.

Redis is optional and may fail: :class:`Counters` then counts in this process (one limit per worker, documented
in docs/QUOTAS.md) and tries Redis again after ``retry_s``, so a Redis outage never stops the chat and never makes
every question wait for a connection timeout.

A question is checked against all its limits and counted in all of them at once (:meth:`Counters.reserve`: one Lua
script in Redis, one lock here), so simultaneous requests cannot pass a limit together, and a refused one counts
nowhere. An answer's tokens are added afterwards in the same single step (:meth:`Counters.add_once`).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

logger = logging.getLogger(__name__)

PREFIX = "coursebots:quota:"

# KEYS: the repeat marker, then one per window; ARGV: the marker's time to live (0: none), then per window its
# limit (-1: none), amount, time to live and 1 when a repeat skips it. Returns {refusing window (1-based) or 0,
# 1 when the request repeats one let through}.
RESERVE_LUA = """
-- KEYS[i] (i >= 2) is window i - 1; its four ARGV start at ARGV[4 * i - 6]
local repeated = tonumber(ARGV[1]) > 0 and redis.call('EXISTS', KEYS[1]) == 1
for i = 2, #KEYS do
  local a = i * 4 - 6
  local limit = tonumber(ARGV[a])
  if limit >= 0 and not (repeated and ARGV[a + 3] == '1') and tonumber(redis.call('GET', KEYS[i]) or '0') >= limit then
    return {i - 1, repeated and 1 or 0}
  end
end
for i = 2, #KEYS do
  local a = i * 4 - 6
  if tonumber(ARGV[a + 1]) > 0 and not (repeated and ARGV[a + 3] == '1') then
    redis.call('SET', KEYS[i], 0, 'EX', ARGV[a + 2], 'NX')
    redis.call('INCRBY', KEYS[i], ARGV[a + 1])
  end
end
if tonumber(ARGV[1]) > 0 and not repeated then redis.call('SET', KEYS[1], 1, 'EX', ARGV[1]) end
return {0, repeated and 1 or 0}
"""

# KEYS: the marker, one per window, then the key to read (optional); ARGV: the number of windows, the marker's
# time to live (0: no marker, always add), then per window its amount and time to live. Returns the read value.
ADD_ONCE_LUA = """
local n = tonumber(ARGV[1])
if ARGV[2] == '0' or redis.call('SET', KEYS[1], 1, 'EX', ARGV[2], 'NX') then
  for i = 1, n do
    redis.call('SET', KEYS[i + 1], 0, 'EX', ARGV[i * 2 + 2], 'NX')
    redis.call('INCRBY', KEYS[i + 1], ARGV[i * 2 + 1])
  end
end
if #KEYS > n + 1 then return tonumber(redis.call('GET', KEYS[n + 2]) or '0') end
return 0
"""


@dataclass(frozen=True)
class Window:
    """A counter a request is checked against and counted in: full (refusing) once it holds ``limit``."""

    key: str
    ttl_s: int
    limit: int | None = None  # None: counted, never refusing
    amount: int = 1  # added when the request passes every window; 0: only checked (tokens are added afterwards)
    first_only: bool = False  # a repeat of a request already let through neither checks nor counts it


@dataclass(frozen=True)
class Reservation:
    """The outcome of :meth:`Counters.reserve`: the window that refused (``None``: all counted) and whether the
    request repeated one already let through."""

    refused: Window | None
    repeated: bool

    @property
    def allowed(self) -> bool:
        """Whether every window had room (and counted the request)."""
        return self.refused is None


def _outcome(windows: Sequence[Window], refused: int, repeated: bool) -> Reservation:
    """A reservation from the 1-based index of the refusing window (0: none)."""
    return Reservation(windows[refused - 1] if refused else None, repeated)


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
            return self._add(key, amount, ttl_s, now)

    def get(self, key: str) -> int:
        """The value of ``key`` (0 when unset or expired)."""
        with self._lock:
            return self._value(key, self._clock())

    def reserve(self, windows: Sequence[Window], repeat_key: str = "", repeat_ttl_s: int = 0) -> Reservation:
        """Count the request in every window if each has room, else in none (as ``RESERVE_LUA``, under the lock)."""
        now = self._clock()
        with self._lock:
            self._sweep(now)
            marking = bool(repeat_key) and repeat_ttl_s > 0
            repeated = marking and self._value(repeat_key, now) > 0
            live = [w for w in windows if not (repeated and w.first_only)]
            for number, window in enumerate(windows, 1):
                if window in live and window.limit is not None and self._value(window.key, now) >= window.limit:
                    return _outcome(windows, number, repeated)
            for window in live:
                if window.amount > 0:
                    self._add(window.key, window.amount, window.ttl_s, now)
            if marking and not repeated:
                self._add(repeat_key, 1, repeat_ttl_s, now)
            return Reservation(None, repeated)

    def add_once(self, marker: str, marker_ttl_s: int, windows: Sequence[Window], read: str = "") -> int:
        """Add each window's amount unless ``marker`` is set (then set it); return ``read``'s value."""
        now = self._clock()
        with self._lock:
            self._sweep(now)
            marking = bool(marker) and marker_ttl_s > 0
            if not marking or self._value(marker, now) == 0:
                if marking:
                    self._add(marker, 1, marker_ttl_s, now)
                for window in windows:
                    self._add(window.key, window.amount, window.ttl_s, now)
            return self._value(read, now) if read else 0

    def _value(self, key: str, now: float) -> int:
        """The value of ``key`` at ``now`` (the caller holds the lock)."""
        value, expires = self._values.get(key, (0, 0.0))
        return value if expires > now else 0

    def _add(self, key: str, amount: int, ttl_s: int, now: float) -> int:
        """Add to ``key``, starting a new window when it expired (the caller holds the lock)."""
        value, expires = self._values.get(key, (0, 0.0))
        if expires <= now:
            value, expires = 0, now + ttl_s
        value += amount
        self._values[key] = (value, expires)
        return value

    def _sweep(self, now: float) -> None:
        """Drop expired keys at most once a minute (the caller holds the lock)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60
        self._values = {k: v for k, v in self._values.items() if v[1] > now}


class RedisCounters:
    """Counters in Redis (``SET NX EX`` + ``INCRBY``; checks and counts in one Lua script), shared by every worker."""

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        """A client with short timeouts (a slow Redis must not hold a student's question); keys start ``prefix``."""
        import redis  # only a deployment with COURSEBOTS_REDIS_URL needs the client

        self.prefix = prefix
        self._client: Any = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._reserve = self._client.register_script(RESERVE_LUA)  # EVALSHA; loaded again if Redis forgot it
        self._add_once = self._client.register_script(ADD_ONCE_LUA)

    def incr(self, key: str, amount: int, ttl_s: int) -> int:
        """Add ``amount`` to ``key`` (expiring after ``ttl_s``); return the new value."""
        pipe = self._client.pipeline()
        pipe.set(self.prefix + key, 0, ex=ttl_s, nx=True)  # the window's key is born with its expiry
        pipe.incrby(self.prefix + key, amount)
        _, value = pipe.execute()
        return int(value)

    def get(self, key: str) -> int:
        """The value of ``key`` (0 when unset)."""
        value = self._client.get(self.prefix + key)
        return int(value) if value is not None else 0

    def reserve(self, windows: Sequence[Window], repeat_key: str = "", repeat_ttl_s: int = 0) -> Reservation:
        """Count the request in every window if each has room, else in none: one round trip (``RESERVE_LUA``)."""
        args: list[int] = [repeat_ttl_s if repeat_key else 0]
        for window in windows:
            args += [-1 if window.limit is None else window.limit, window.amount, window.ttl_s, int(window.first_only)]
        keys = [self.prefix + repeat_key] + [self.prefix + w.key for w in windows]
        refused, repeated = self._reserve(keys=keys, args=args)
        return _outcome(windows, int(refused), bool(repeated))

    def add_once(self, marker: str, marker_ttl_s: int, windows: Sequence[Window], read: str = "") -> int:
        """Add each window's amount unless ``marker`` is set (then set it); return ``read``'s value: one round trip."""
        keys = [self.prefix + k for k in (marker, *(w.key for w in windows), *([read] if read else []))]
        args: list[int] = [len(windows), marker_ttl_s if marker else 0]
        for window in windows:
            args += [window.amount, window.ttl_s]
        return int(self._add_once(keys=keys, args=args))


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

    def reserve(self, windows: Sequence[Window], repeat_key: str = "", repeat_ttl_s: int = 0) -> Reservation:
        """Count a request in every window if each has room, else in none (``repeat_key``: marks it let through)."""
        if self.backend == "redis":
            try:
                return self.redis.reserve(windows, repeat_key, repeat_ttl_s)  # type: ignore[union-attr]
            except Exception as exc:  # as in incr
                self._fail(exc)
        return self.memory.reserve(windows, repeat_key, repeat_ttl_s)

    def add_once(self, marker: str, marker_ttl_s: int, windows: Sequence[Window], read: str = "") -> int:
        """Add each window's amount once per ``marker`` (empty: always); return ``read``'s value (0: none)."""
        if self.backend == "redis":
            try:
                return self.redis.add_once(marker, marker_ttl_s, windows, read)  # type: ignore[union-attr]
            except Exception as exc:  # as in incr
                self._fail(exc)
        return self.memory.add_once(marker, marker_ttl_s, windows, read)

    def _fail(self, exc: Exception) -> None:
        """Count in this process for ``retry_s`` seconds (logged once per outage, without the URL)."""
        self._redis_down_until = time.monotonic() + self.retry_s
        logger.warning("fair-use limits counted in this process: Redis unavailable (%s)", type(exc).__name__)
