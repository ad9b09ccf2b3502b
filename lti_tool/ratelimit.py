"""Per-client-address rate limit of the anonymous LTI entry points (login, relaunch, registration).

Issuer and client id are public, so the key is the client address as ProxyFix (``COURSEBOTS_PROXY_HOPS``) sees it;
IPv6 clients are counted per /64, since one host usually holds a whole /64. Fixed windows: counters live in the
process (one limit per worker) or, with ``COURSEBOTS_REDIS_URL``, in Redis (one limit for all workers). When Redis
is unreachable the limit falls back to counters in the process (one limit per worker, as without Redis) rather than
refusing every launch or turning off; Redis is tried again after ``REDIS_RETRY_SECONDS``.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
import time
from typing import Any, Callable

from flask import Flask, Response, current_app, request

from lti_tool.config import Rate, parse_rate  # noqa: F401  (Rate: re-exported for callers of this module)
from lti_tool.reasons import LaunchRejected, rejection_response

logger = logging.getLogger(__name__)

EXTENSION = "coursebots.rate_limiter"
REDIS_RETRY_SECONDS = 5.0  # while Redis is down, count in the process and ask Redis again after this long


class MemoryCounters:
    """Fixed-window counters inside this process; a new window drops the old one's counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def incr(self, key: str, window: int, seconds: int) -> int:
        """Count one request for ``key`` in ``window``; return the count so far."""
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, {}
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


class RedisCounters:
    """Fixed-window counters in Redis, shared by every worker; each key expires with its window."""

    def __init__(self, url: str) -> None:
        import redis  # only a deployment with COURSEBOTS_REDIS_URL needs the client

        self._client: Any = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def incr(self, key: str, window: int, seconds: int) -> int:
        """Count one request for ``key`` in ``window``; return the count so far."""
        name = f"coursebots:ratelimit:{window}:{key}"
        pipe = self._client.pipeline()
        pipe.incr(name)
        pipe.expire(name, seconds + 1)
        count, _ = pipe.execute()
        return int(count)


class RateLimiter:
    """One rate, counted per (scope, client address)."""

    def __init__(self, rate: Rate, counters: MemoryCounters | RedisCounters,
                 clock: Callable[[], float] = time.time) -> None:
        self.rate = rate
        self.counters = counters
        self.clock = clock
        self.fallback = MemoryCounters()  # used while the shared store (Redis) is unreachable
        self._store_down_until = 0.0  # monotonic time before which the shared store is not asked

    def hit(self, scope: str, address: str) -> int | None:
        """Count a request; None when allowed, else the seconds until the window ends (for ``Retry-After``)."""
        now = self.clock()
        window = int(now // self.rate.seconds)
        count = self._count(f"{scope}:{client_key(address)}", window)
        if count <= self.rate.count:
            return None
        return max(1, int((window + 1) * self.rate.seconds - now + 0.999))

    def _count(self, key: str, window: int) -> int:
        """Count in the configured store, or in this process while that store is unreachable."""
        if time.monotonic() < self._store_down_until:
            return self.fallback.incr(key, window, self.rate.seconds)
        try:
            count = self.counters.incr(key, window, self.rate.seconds)
        except Exception as exc:  # Redis down: keep limiting, per process, rather than refuse or admit every one
            if not self._store_down_until:
                logger.warning("rate limit counted per process: counter store unavailable (%s)", type(exc).__name__)
            self._store_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            return self.fallback.incr(key, window, self.rate.seconds)
        if self._store_down_until:
            logger.info("rate limit counted in the shared store again")
            self._store_down_until = 0.0
        return count


def client_key(address: str) -> str:
    """The counted unit of a client address: the address itself, or its /64 for IPv6."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def init_app(app: Flask) -> None:
    """Create the app's limiter from ``COURSEBOTS_LTI_RATE_LIMIT`` (Redis counters when Redis is configured)."""
    config = app.extensions["coursebots.config"]
    rate = parse_rate(config.lti_rate_limit)
    if rate is None:
        app.extensions[EXTENSION] = None
        return
    counters = RedisCounters(config.redis_url) if config.redis_url else MemoryCounters()
    app.extensions[EXTENSION] = RateLimiter(rate, counters)


def check(scope: str) -> Response | None:
    """None when this request is within the limit, else the iframe-safe 429 page to answer with."""
    limiter: RateLimiter | None = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return None
    retry_after = limiter.hit(scope, request.remote_addr or "")
    if retry_after is None:
        return None

    response = rejection_response(LaunchRejected("rate_limited"))
    response.headers["Retry-After"] = str(retry_after)
    return response
