"""Pseudonym-free usage counters per bot and day, and the aggregates admins see (counts, never content)."""
from __future__ import annotations

import time
from datetime import date, datetime, time as day_time, timedelta, timezone
from typing import Any, Iterable, Iterator

from sqlalchemy import Date, and_, cast, func, select, update
from sqlalchemy.exc import IntegrityError

from course_bots.chat.models import ChatSession, Message, UsageEvent
from course_bots.llm.catalogue import EXTRACTIVE_LABEL
from course_bots.models import CourseBot
from lti_tool import metrics
from lti_tool.extensions import db, utcnow

COUNTERS = ("questions", "answers", "errors", "prompt_tokens", "completion_tokens")
MODEL_KINDS = ("openai", "local")  # answers a language model wrote (the others quote the materials or refuse)


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
            if name == "token":  # most events: one comparison, then passed on
                if first_token:
                    first_token = False
                    metrics.FIRST_TOKEN.observe(time.monotonic() - started)
            elif name == "status" and data.get("state") == "started":
                asked = True
                metrics.QUESTIONS.inc()
            elif name == "status" and data.get("state") == "fallback":
                fallback = True
                metrics.BACKEND_ERRORS.labels(code="fallback").inc()
            elif name == "error" and outcome is None:
                outcome = "error"
                metrics.BACKEND_ERRORS.labels(code=str(data.get("code") or "unknown")[:32]).inc()
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


#: The longest window of the daily series (a year and a day).
MAX_DAYS = 366


def _day_rows(days: int, today: date | None) -> tuple[date, list[date]]:
    """The first day of the window and every day in it, oldest first."""
    last = today or utcnow().date()
    first = last - timedelta(days=days - 1)
    return first, [first + timedelta(days=i) for i in range(days)]


def _model_usage(first: date, issuer: str | None, bot_id: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Answers, tokens and answer time per model and per day since ``first``, from the stored answers.

    Answers are deleted with their conversations (retention, erasure), so these are what is still stored. Summed
    in the database (one row per model and day), not row by row here.
    """
    since = datetime.combine(first, day_time(0), tzinfo=timezone.utc)
    day: Any
    if db.engine.dialect.name == "sqlite":
        day = func.date(Message.created_at)  # stored as UTC text: its first ten characters
    else:
        day = cast(func.timezone("UTC", Message.created_at), Date)  # the UTC day whatever the session's zone
    query = (select(Message.model_id, Message.answer_kind, day.label("day"), func.count(Message.id).label("answers"),
                    func.coalesce(func.sum(Message.prompt_tokens), 0).label("tokens_in"),
                    func.coalesce(func.sum(Message.completion_tokens), 0).label("tokens_out"),
                    func.coalesce(func.sum(Message.latency_ms), 0).label("latency_ms"))
             .join(ChatSession, Message.session_id == ChatSession.id)
             .where(Message.role == "assistant", Message.status == "ok", Message.created_at >= since,
                    ChatSession.preview.is_(False))
             .group_by(Message.model_id, Message.answer_kind, day))
    if bot_id is not None:
        query = query.where(ChatSession.bot_id == bot_id)
    if issuer is not None:
        query = query.join(CourseBot, CourseBot.id == ChatSession.bot_id).where(CourseBot.issuer == issuer)
    models: dict[str, dict[str, Any]] = {}
    seconds_per_day: dict[str, float] = {}
    for row in db.session.execute(query):
        model = row.model_id or "unknown"
        if row.answer_kind == "fallback":  # quoted passages stood in for the model: not the model's answers
            model = EXTRACTIVE_LABEL
        written_by_model = (row.answer_kind in MODEL_KINDS if row.answer_kind
                            else model not in ("refusal", "extractive", EXTRACTIVE_LABEL))  # stored before kinds
        entry = models.setdefault(model, {"model": model, "answers": 0, "tokens_in": 0, "tokens_out": 0,
                                          "answer_seconds": 0.0,
                                          "extractive": model in ("extractive", EXTRACTIVE_LABEL)})
        entry["answers"] += int(row.answers)
        entry["tokens_in"] += int(row.tokens_in)
        entry["tokens_out"] += int(row.tokens_out)
        entry["answer_seconds"] += int(row.latency_ms) / 1000
        if written_by_model and row.latency_ms:
            key = str(row.day)[:10]
            seconds_per_day[key] = seconds_per_day.get(key, 0.0) + int(row.latency_ms) / 1000
    rows = sorted(models.values(), key=lambda m: (-m["answers"], m["model"]))
    for entry in rows:
        entry["answer_seconds"] = round(entry["answer_seconds"], 3)
    return rows, seconds_per_day


def usage_daily(days: int = 30, *, issuer: str | None = None, bot_id: int | None = None,
                today: date | None = None) -> dict[str, Any]:
    """Usage over the last ``days`` days: every day (zeros included), per course and per model.

    ``gpu_seconds`` is the generation time of the answers a language model wrote that day (null when none was
    stored): the model server's own busy time is on its /metrics.
    """
    days = max(1, min(int(days), MAX_DAYS))
    first, window = _day_rows(days, today)
    query = (select(UsageEvent.day, *[func.coalesce(func.sum(getattr(UsageEvent, k)), 0).label(k) for k in COUNTERS])
             .where(UsageEvent.day >= first).group_by(UsageEvent.day))
    if bot_id is not None:
        query = query.where(UsageEvent.bot_id == bot_id)
    if issuer is not None:
        query = query.join(CourseBot, CourseBot.id == UsageEvent.bot_id).where(CourseBot.issuer == issuer)
    counted = {row.day: row for row in db.session.execute(query)}
    by_model, seconds = _model_usage(first, issuer, bot_id)
    series = []
    for day in window:
        row = counted.get(day)
        series.append({"date": day.isoformat(),
                       "questions": int(row.questions) if row else 0, "answers": int(row.answers) if row else 0,
                       "errors": int(row.errors) if row else 0,
                       "tokens_in": int(row.prompt_tokens) if row else 0,
                       "tokens_out": int(row.completion_tokens) if row else 0,
                       "gpu_seconds": round(seconds[day.isoformat()], 3) if day.isoformat() in seconds else None})
    result: dict[str, Any] = {"days": series, "by_model": by_model}
    if bot_id is None:
        result["by_course"] = [
            {"bot_id": c["bot_id"], "title": c["title"], "context_id": c["context_id"], "questions": c["questions"],
             "answers": c["answers"], "errors": c["errors"], "tokens_in": c["prompt_tokens"],
             "tokens_out": c["completion_tokens"]}
            for c in usage_by_course(issuer, since=first)]
    return result
