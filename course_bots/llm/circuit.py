"""A small circuit breaker: after repeated failures a dead server is not called again until a cool-down passes."""
from __future__ import annotations

import threading
import time
from typing import Callable

from . import telemetry


class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → one trial call after ``cooldown_s`` (half-open)."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, name: str = "model_server") -> None:
        self.name = name  # the label of its state on /metrics (coursebots_circuit_state)
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        """State without taking the lock."""
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state only one trial at a time)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                telemetry.circuit(self.name, "half_open")
                return True
            return False

    def success(self) -> None:
        """Record a working call: the circuit closes."""
        with self._lock:
            if self._opened_at is not None or self._failures:
                telemetry.circuit(self.name, "closed")
            self._failures, self._opened_at, self._trial_running = 0, None, False

    def abandon(self) -> None:
        """A call ended without a verdict (the caller stopped reading, a bad request): free the half-open trial.

        Without this a trial whose stream the student closed would hold the circuit half-open forever.
        """
        with self._lock:
            self._trial_running = False

    def failure(self) -> None:
        """Record a failed call: the circuit opens at the threshold (or again after a failed trial)."""
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold or self._trial_running:
                self._opened_at = self._clock()
                telemetry.circuit(self.name, "open")
            self._trial_running = False
