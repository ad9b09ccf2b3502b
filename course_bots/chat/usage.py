"""Pseudonym-free usage counters per bot and day, and the aggregates admins see (counts, never content)."""
from __future__ import annotations

import time
from datetime import date
from typing import Any, Iterable, Iterator

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError

from course_bots.chat.models import ChatSession, Message, UsageEvent
from course_bots.models import CourseBot
from lti_tool import metrics
from lti_tool.extensions import db, utcnow

COUNTERS = ("questions", "answers", "errors", "prompt_tokens", "completion_tokens")


def add_usage(bot_id: int, *, day: date | None = None, **deltas: int) -> None:
    """Add to today's counters of a bot (atomic increments; the day's row is created on first use)."""
    deltas = {k: int(v) for k, v in deltas.items() if v}
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown usage counters: {sorted(unknown)}")
    if not deltas:
        return
    day = day or utcnow().date()
    statement = (update(UsageEvent).where(UsageEvent.bot_id == bot_id, UsageEvent.day == day)
                 .values({getattr(UsageEvent, k): getattr(UsageEvent, k) + v for k, v in deltas.items()})
                 .execution_options(synchronize_session=False))
    if db.session.execute(statement).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with db.session.begin_nested():
            row = UsageEvent(bot_id=bot_id, day=day, **{k: deltas.get(k, 0) for k in COUNTERS})
            db.session.add(row)
    except IntegrityError:
        db.session.execute(statement)  # another request created the day's row first


def metered(events: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Pass an answer's events through, measuring it: open streams, time to first token, outcome, tokens per model.

    Outcomes: ``answered``, ``not_covered`` (the materials do not cover it), ``fallback`` (the extractive fallback
    answered), ``error``, ``cancelled`` (the reader left). A retry of an answered question is not counted again.
    """
    started, first_token, fallback, outcome, asked = time.monotonic(), True, False, None, False
    metrics.OPEN_STREAMS.inc()
    try:
        for name, data in events:
            if name == "status" and data.get("state") == "started":
                asked = True
                metrics.QUESTIONS.inc()
            elif name == "status" and data.get("state") == "fallback":
                fallback = True
            elif name == "token" and first_token:
                first_token = False
                metrics.FIRST_TOKEN.observe(time.monotonic() - started)
            elif name == "error" and outcome is None:
                outcome = "error"
            elif name == "done" and outcome is None and asked:
                outcome = _answered(data.get("message_id"), fallback)
            yield name, data
    except Exception:
        outcome = outcome or "error"
        raise
    finally:  # also when the reader leaves: the generator is closed mid-answer
        metrics.OPEN_STREAMS.dec()
        if asked:
            metrics.ANSWER_SECONDS.observe(time.monotonic() - started)
            metrics.ANSWERS.labels(outcome=outcome or "cancelled").inc()


def _answered(message_id: Any, fallback: bool) -> str:
    """The outcome of a stored answer, counting its tokens under its model."""
    answer = db.session.get(Message, message_id) if isinstance(message_id, int) else None
    if answer is None:
        return "fallback" if fallback else "answered"
    model = answer.model_id or "unknown"
    if answer.prompt_tokens:
        metrics.TOKENS.labels(direction="in", model=model).inc(answer.prompt_tokens)
    if answer.completion_tokens:
        metrics.TOKENS.labels(direction="out", model=model).inc(answer.completion_tokens)
    if model == "refusal":
        return "not_covered"
    return "fallback" if fallback else "answered"


def usage_by_course(issuer: str | None = None, since: date | None = None) -> list[dict[str, Any]]:
    """Per bot: questions, answers, errors, tokens and distinct participants — counts only."""
    join_on = [UsageEvent.bot_id == CourseBot.id] + ([UsageEvent.day >= since] if since else [])
    totals = [func.coalesce(func.sum(getattr(UsageEvent, k)), 0).label(k) for k in COUNTERS]
    query = (select(CourseBot.id, CourseBot.issuer, CourseBot.context_id, CourseBot.title, CourseBot.last_used_at,
                    *totals)
             .outerjoin(UsageEvent, and_(*join_on))
             .group_by(CourseBot.id, CourseBot.issuer, CourseBot.context_id, CourseBot.title, CourseBot.last_used_at)
             .order_by(CourseBot.issuer, CourseBot.id))
    if issuer:
        query = query.where(CourseBot.issuer == issuer)
    participants = dict(db.session.execute(
        select(ChatSession.bot_id, func.count(func.distinct(ChatSession.pseudonym)))
        .where(ChatSession.preview.is_(False), ChatSession.pseudonym.is_not(None))
        .group_by(ChatSession.bot_id)).all())
    rows = []
    for row in db.session.execute(query):
        item = {"bot_id": row.id, "issuer": row.issuer, "context_id": row.context_id, "title": row.title,
                "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
                "participants": int(participants.get(row.id, 0))}
        item.update({k: int(getattr(row, k)) for k in COUNTERS})
        rows.append(item)
    return rows


def usage_by_platform(since: date | None = None) -> list[dict[str, Any]]:
    """Per platform issuer: number of bots and summed counters."""
    platforms: dict[str, dict[str, Any]] = {}
    for row in usage_by_course(since=since):
        entry = platforms.setdefault(row["issuer"], {"issuer": row["issuer"], "bots": 0,
                                                     **{k: 0 for k in COUNTERS}})
        entry["bots"] += 1
        for k in COUNTERS:
            entry[k] += row[k]
    return list(platforms.values())


def daily_usage(bot_id: int, since: date | None = None) -> list[dict[str, Any]]:
    """One bot's counters per day (questions per day for the teacher's chart)."""
    query = select(UsageEvent).where(UsageEvent.bot_id == bot_id).order_by(UsageEvent.day)
    if since:
        query = query.where(UsageEvent.day >= since)
    return [{"day": r.day.isoformat(), **{k: getattr(r, k) for k in COUNTERS}} for r in db.session.scalars(query)]
