"""Privacy rules: per-course pseudonyms (the frozen contract), labels, the small-course threshold and retention.

Scrubbing lives in :mod:`course_bots.privacy_scrub` (re-exported here); operations on stored data in
:mod:`course_bots.services.privacy_ops`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from course_bots.privacy_scrub import Scrubber, scrub  # noqa: F401  (re-exported)


def pseudonym(key: str, issuer: str, sub: str, bot_id: int) -> str:
    """HMAC-SHA256(key, json.dumps([issuer, sub, bot_id])) as hex: stable per course, unlinkable across courses."""
    message = json.dumps([issuer, sub, bot_id]).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def anonymous_pseudonym() -> str:
    """A per-session pseudonym for launches without ``sub`` (never linkable to anything)."""
    return "anon-" + secrets.token_hex(28)


# Words of the labels teachers see ("Student 17"); the UI may translate them by ``label_role``.
ROLE_LABELS = {
    "learner": "Student",
    "instructor": "Instructor",
    "teaching_assistant": "Teaching assistant",
    "content_developer": "Content developer",
    "administrator": "Administrator",
}


def label(role: str, number: int | None) -> str:
    """The label a teacher sees for a participant, e.g. "Student 17"; anonymized ones have no number."""
    word = ROLE_LABELS.get(role, "Student")
    return f"{word} {number}" if number else f"{word} (anonymized)"


def logs_open(distinct_students: int, min_students: int) -> bool:
    """Small-course protection: logs open only once at least ``min_students`` distinct students used the bot."""
    return distinct_students >= max(min_students, 1)


@dataclass(frozen=True)
class Retention:
    """Effective retention of one bot, in days (0 = never)."""

    anonymize_days: int
    delete_days: int


def stricter(base: Retention, override: Retention | None) -> Retention:
    """Combine a platform rule with a bot override: the override may only shorten periods."""
    if override is None:
        return base
    return Retention(_shorter(base.anonymize_days, override.anonymize_days),
                     _shorter(base.delete_days, override.delete_days))


def is_stricter_or_equal(base: Retention, candidate: Retention) -> bool:
    """Whether ``candidate`` keeps nothing longer than ``base`` (a bot may only tighten its platform's rule)."""
    return stricter(base, candidate) == candidate


def _shorter(a: int, b: int) -> int:
    # 0 means "never", i.e. infinitely long.
    if a <= 0:
        return max(b, 0)
    if b <= 0:
        return a
    return min(a, b)
