"""Fair use, the services other features call: may this participant ask now, how many questions are left, what
an answer cost, the limits administrators and teachers set, and how often limits were hit (by pseudonym).

Counts live in :mod:`course_bots.quotas.counters` (Redis, or this process); limits come from
:mod:`course_bots.quotas.limits`. Teacher previews are never limited or counted. Times: a quota day starts at
midnight in ``COURSEBOTS_QUOTA_TIMEZONE``; bursts and model rates are counted per clock minute.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from course_bots import i18n
from course_bots.quotas.counters import Counters, Window
from course_bots.quotas.limits import (  # noqa: F401  (re-exported: the quota services other features call)
    Limits, QuotaError, bot_overrides, effective_limits, platform_limits, platform_rules, question_limits,
    set_bot_override, set_platform_rule)
from course_bots.quotas.models import QuotaHit
from lti_tool.config import Config
from lti_tool.context import SessionToken, is_teacher
from lti_tool.extensions import current_config, db

EXTENSION = "coursebots.quota_counters"
DAY_TTL_S = 2 * 86400  # a day's counter outlives the longest day of any time zone
MINUTE_TTL_S = 120


@dataclass(frozen=True)
class Decision:
    """Whether a question may be answered; when not, the API's code, the student's message and the reset time."""

    allowed: bool
    code: str = ""
    message: str = ""
    retry_after_s: int | None = None
    resets_at: str | None = None


def counters() -> Counters:
    """This app's counters (created by the feature's ``init_app``)."""
    store: Counters = current_app.extensions[EXTENSION]
    return store


def quota_role(session: SessionToken) -> str:
    """Whose limits hold for the session: ``teacher`` or ``learner``."""
    return "teacher" if is_teacher(session.role_set) else "learner"


def _key(*parts: object) -> str:
    """A counter key; issuers and model keys are hashed (free text must not shape Redis keys)."""
    return ":".join(str(p) for p in parts)


def _digest(text: str) -> str:
    """A short stable digest of free text for counter keys."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class _Clock:
    """One moment in the quota's time zone: today's key, the next local midnight and the current minute."""

    def __init__(self, config: Config, now: float) -> None:
        self.now = now
        self.zone = ZoneInfo(config.quota_timezone)
        self.local = datetime.fromtimestamp(now, self.zone)
        self.day = self.local.date().isoformat()
        midnight = datetime.combine(self.local.date() + timedelta(days=1), datetime.min.time(), self.zone)
        self.day_end = midnight.timestamp()
        self.minute = int(now // 60)
        self.minute_end = float((self.minute + 1) * 60)

    def shown(self, at: float, language: str) -> str:
        """A reset time as the student reads it: ``14:05 CET``, with the date when it is not today."""
        local = datetime.fromtimestamp(at, self.zone)
        if local.date() == self.local.date():
            text = local.strftime("%H:%M")
        else:
            text = local.strftime("%d.%m.%Y %H:%M" if language == "de" else "%Y-%m-%d %H:%M")
        return f"{text} {local.tzname()}"


def _iso(at: float) -> str:
    """A moment as ISO 8601 UTC (``...Z``)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _refuse(code: str, key: str, language: str, clock: _Clock, until: float, **values: Any) -> Decision:
    """A refusal whose message names the local reset time."""
    message = i18n.text(key, language, time=clock.shown(until, language), **values)
    return Decision(False, code, message, max(1, int(until - clock.now + 0.999)), _iso(until))


def check(session: SessionToken, bot_id: int, language: str, *, client_id: str = "",
          model_key: str = "", requests_per_minute: int | None = None) -> Decision:
    """Count a question and decide whether it may be answered now (previews: always, uncounted).

    Order: the participant's burst, their questions and tokens today, the platform's budget today, the model's
    requests per minute in this course. A retry of a question already let through (same ``client_id``) is not
    counted against the day again. A refusal is recorded as a limit hit under the participant's pseudonym.
    """
    if session.preview:
        return Decision(True)
    config, store = current_config(), counters()
    clock = _Clock(config, store.clock())
    role = quota_role(session)
    limits, platform = question_limits(config, session.issuer, bot_id, role)
    person = _key(bot_id, session.pseudonym)
    decision = _decide(config, store, clock, session, (limits, platform), person, language, model_key,
                       requests_per_minute, client_id, bot_id)
    if not decision.allowed:
        record_hit(session, bot_id, decision.code, clock.local.date())
    return decision


def _decide(config: Config, store: Counters, clock: _Clock, session: SessionToken, both: tuple[Limits, Limits],
            person: str,
            language: str, model_key: str, requests_per_minute: int | None, client_id: str,
            bot_id: int) -> Decision:
    """The checks of :func:`check` in order, made and counted in one step (one Redis round trip): a question is
    counted in every window or, refused, in none; simultaneous questions cannot pass a limit together."""
    limits, platform = both
    issuer = _digest(session.issuer)
    minute, day = clock.minute_end, clock.day_end
    checks: list[tuple[Window, tuple[str, str, float, dict[str, Any]]]] = []
    if limits.burst_per_minute is not None:
        checks.append((Window(_key("burst", person, clock.minute), MINUTE_TTL_S, limits.burst_per_minute),
                       ("rate_limited", "quota_rate_limited", minute, {"limit": limits.burst_per_minute})))
    checks.append((Window(_key("day", person, clock.day), DAY_TTL_S, limits.questions_per_day, first_only=True),
                   ("quota_exceeded", "quota_questions_exceeded", day, {"limit": limits.questions_per_day})))
    if limits.tokens_per_day is not None:  # checked only: an answer's tokens are added after it (add_tokens)
        checks.append((Window(_key("tokens", person, clock.day), DAY_TTL_S, limits.tokens_per_day, 0, True),
                       ("quota_exceeded", "quota_tokens_exceeded", day, {})))
    checks.append((Window(_key("platform", issuer, clock.day), DAY_TTL_S, platform.questions_per_day,
                          first_only=True), ("quota_exceeded", "quota_platform_exceeded", day, {})))
    if platform.tokens_per_day is not None:
        checks.append((Window(_key("platform_tokens", issuer, clock.day), DAY_TTL_S, platform.tokens_per_day, 0,
                              True), ("quota_exceeded", "quota_platform_exceeded", day, {})))
    if requests_per_minute:
        checks.append((Window(_key("model", _digest(model_key), bot_id, clock.minute), MINUTE_TTL_S,
                              requests_per_minute), ("model_busy", "quota_model_busy", minute, {})))
    windows = [window for window, _ in checks]
    asked = _key("asked", person, client_id) if client_id else ""  # a retry of a question let through
    reservation = store.reserve(windows, asked, DAY_TTL_S)
    if reservation.refused is None:
        return Decision(True)
    code, message, until, values = checks[windows.index(reservation.refused)][1]
    return _refuse(code, message, language, clock, until, **values)


def status(session: SessionToken, bot_id: int) -> dict[str, Any]:
    """``{"questions_left", "limit", "resets_at"}`` of the participant today (all null: no daily limit, preview)."""
    return add_tokens(session, bot_id, None, 0)


def add_tokens(session: SessionToken, bot_id: int, answer_id: int | None, tokens: int) -> dict[str, Any]:
    """Count an answer's model tokens against the participant's and the platform's day (once per answer) and
    return :func:`status` after it, in one round trip (the add is atomic; see docs/QUOTAS.md on overshooting)."""
    if session.preview:
        return {"questions_left": None, "limit": None, "resets_at": None}
    config, store = current_config(), counters()
    clock = _Clock(config, store.clock())
    person = _key(bot_id, session.pseudonym)
    limit = question_limits(config, session.issuer, bot_id, quota_role(session))[0].questions_per_day
    day_key = _key("day", person, clock.day) if limit is not None else ""
    if answer_id is not None and tokens > 0:
        used = store.add_once(_key("tokens_counted", bot_id, answer_id), DAY_TTL_S,
                              [Window(_key("tokens", person, clock.day), DAY_TTL_S, amount=tokens),
                               Window(_key("platform_tokens", _digest(session.issuer), clock.day), DAY_TTL_S,
                                      amount=tokens)], day_key)
    else:
        used = store.get(day_key) if day_key else 0
    if limit is None:
        return {"questions_left": None, "limit": None, "resets_at": None}
    return {"questions_left": max(0, limit - used), "limit": limit, "resets_at": _iso(clock.day_end)}


def record_hit(session: SessionToken, bot_id: int, code: str, day: date) -> None:
    """Count one refusal of the participant (pseudonym and role, never a user id) for the teacher's view."""
    statement = (update(QuotaHit).where(QuotaHit.bot_id == bot_id, QuotaHit.day == day,
                                        QuotaHit.pseudonym == session.pseudonym, QuotaHit.code == code)
                 .values(hits=QuotaHit.hits + 1).execution_options(synchronize_session=False))
    if db.session.execute(statement).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with db.session.begin_nested():
            db.session.add(QuotaHit(bot_id=bot_id, day=day, role=quota_role(session), pseudonym=session.pseudonym,
                                    code=code, hits=1))
    except IntegrityError:
        db.session.execute(statement)  # another request created the row first
    keep_days = current_config().retention_anonymize_days  # hits carry a pseudonym: kept no longer than that
    if keep_days > 0:
        db.session.execute(delete(QuotaHit).where(QuotaHit.bot_id == bot_id,
                                                  QuotaHit.day < day - timedelta(days=keep_days)))


def hits_summary(bot_id: int, since: date) -> dict[str, Any]:
    """Limit hits of a bot since ``since``: per reason and role, per day, and per participant (short pseudonym)."""
    base = select(QuotaHit).where(QuotaHit.bot_id == bot_id, QuotaHit.day >= since).subquery()
    by_reason = db.session.execute(
        select(base.c.code, base.c.role, func.sum(base.c.hits), func.count(func.distinct(base.c.pseudonym)))
        .group_by(base.c.code, base.c.role).order_by(base.c.code, base.c.role)).all()
    by_day = db.session.execute(select(base.c.day, func.sum(base.c.hits)).group_by(base.c.day)
                                .order_by(base.c.day)).all()
    by_person = db.session.execute(
        select(base.c.pseudonym, base.c.role, func.sum(base.c.hits).label("hits"))
        .group_by(base.c.pseudonym, base.c.role).order_by(func.sum(base.c.hits).desc()).limit(20)).all()
    return {"since": since.isoformat(),
            "total": sum(int(r[2]) for r in by_reason),
            "by_reason": [{"code": r[0], "role": r[1], "hits": int(r[2]), "participants": int(r[3])}
                          for r in by_reason],
            "by_day": [{"day": r[0].isoformat(), "hits": int(r[1])} for r in by_day],
            "by_participant": [{"participant": r[0][:8], "role": r[1], "hits": int(r[2])} for r in by_person]}


def platform_settings(issuer: str) -> dict[str, Any]:
    """The administrator's view of a platform's limits (:func:`platform_rules`) and where counts are kept."""
    return {"issuer": issuer, "rules": platform_rules(current_config(), issuer),
            "counters": counters().backend, "timezone": current_config().quota_timezone}


def set_limits(issuer: str, role: str, values: Mapping[str, int | None]) -> dict[str, Any]:
    """Save an administrator's limits for a role of the platform; returns the new view."""
    set_platform_rule(issuer, role, values)
    return platform_settings(issuer)
