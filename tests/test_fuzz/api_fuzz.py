"""Fuzz the JSON API from docs/openapi.yaml with schemathesis, in-process over WSGI, as a teacher and a student.

Shared by ``tests/test_fuzz/test_api_fuzz.py`` (asserts no 5xx and no traceback in any body) and
``bench/faults/api_fuzz.py`` (prints the share of 2xx answers). Examples are drawn with a fixed count and
Hypothesis' derandomized (fixed) seed; every path's ``bot_id`` is the session's own course, so requests get past
the authorisation check and reach the handlers.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
MARKERS = ("Traceback (most recent call last)", 'File "/', "sqlalchemy.exc", "psycopg.")


@dataclass
class FuzzResult:
    """What the fuzzing saw: answers per status class and role, and every failure (5xx or a traceback)."""

    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    by_operation: dict[str, collections.Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Requests sent."""
        return sum(self.statuses.values())

    def share(self, status_class: str) -> float:
        """The fraction of answers in ``2xx``, ``4xx``, ...; 0 without requests."""
        return self.statuses[status_class] / self.total if self.total else 0.0


def fuzz(app: Any, bot_id: int, headers: Mapping[str, Mapping[str, str]], examples: int = 10,
         operations: str | None = None) -> FuzzResult:
    """Send ``examples`` generated requests per operation (``operations``: a path substring) for every role."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    result = FuzzResult()
    client = app.test_client()

    def accept_notice() -> None:
        """Accept the notice for every role, so questions reach the answer path (a fuzzed refusal revokes it)."""
        for role_headers in headers.values():
            notice = client.get("/api/v1/consent", headers=dict(role_headers)).get_json() or {}
            version = (notice.get("notice") or {}).get("version", 0)
            client.post("/api/v1/consent", json={"accepted": True, "version": version}, headers=dict(role_headers))

    schema = schemathesis.openapi.from_path(str(SPEC))
    # Deleting the course comes last: after it every course route answers 404.
    for operation in sorted((item.ok() for item in schema.get_all_operations()),
                            key=lambda op: (op.method.lower(), op.path) == ("delete", "/bots/{bot_id}")):
        if operations and operations not in operation.path:
            continue
        accept_notice()
        label = f"{operation.method.upper()} {operation.path}"
        counts = result.by_operation.setdefault(label, collections.Counter())

        @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy())
        def send(case: Any) -> None:
            if case.path_parameters and "bot_id" in case.path_parameters:
                case.path_parameters["bot_id"] = bot_id
            for role, role_headers in headers.items():
                response = case.call(app=app, headers=dict(role_headers))
                status = response.status_code
                result.statuses[f"{status // 100}xx"] += 1
                counts[status] += 1
                body = response.text or ""
                if status >= 500 or any(marker in body for marker in MARKERS):
                    result.failures.append(f"{role} {label} -> {status}: {case.as_curl_command()[:300]}"
                                           f" | {body[:300]!r}")

        send()
    return result
