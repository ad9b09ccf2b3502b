"""What teachers may see of their course's conversations: labels and roles, and nothing below k students."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from course_bots import i18n
from course_bots.chat.models import ChatSession, Feedback, Message
from course_bots.privacy.models import ParticipantLabel
from course_bots.privacy_rules import label, logs_open
from course_bots.chat.usage import daily_usage
from lti_tool.extensions import current_config, db

EXPORT_FIELDS = ("conversation_id", "participant", "role", "asked_at", "question", "answer", "status",
                 "error_code", "confidence", "feedback", "feedback_comment")


def distinct_students(bot_id: int) -> int:
    """Distinct students (learners, previews excluded) with a linked conversation in this bot."""
    return int(db.session.scalar(
        select(func.count(func.distinct(ChatSession.pseudonym)))
        .where(ChatSession.bot_id == bot_id, ChatSession.role == "learner", ChatSession.preview.is_(False),
               ChatSession.pseudonym.is_not(None))) or 0)


def logs_state(bot_id: int, language: str = "en") -> dict[str, Any]:
    """Whether the logs are open, with the aggregate counts that are always visible."""
    k = current_config().privacy_min_students
    students = distinct_students(bot_id)
    live = (ChatSession.bot_id == bot_id) & ChatSession.preview.is_(False)
    conversations = db.session.scalar(select(func.count(ChatSession.id)).where(live)) or 0
    questions = db.session.scalar(select(func.count(Message.id)).join(ChatSession)
                                  .where(live, Message.role == "user")) or 0
    is_open = logs_open(students, k)
    message = "" if is_open else i18n.text("logs_closed_message", language, k=k, n=students)
    return {"open": is_open, "min_students": k, "students": students, "conversations": int(conversations),
            "questions": int(questions), "message": message, "questions_per_day": daily_usage(bot_id)}


def _labels(bot_id: int) -> dict[str, int]:
    return dict(db.session.execute(select(ParticipantLabel.pseudonym, ParticipantLabel.number)
                                   .where(ParticipantLabel.bot_id == bot_id)).all())


def _feedback_for(message_ids: list[int]) -> dict[int, Feedback]:
    if not message_ids:
        return {}
    return {f.message_id: f for f in db.session.scalars(select(Feedback).where(Feedback.message_id.in_(message_ids)))}


def _conversations(bot_id: int, role: str | None, since: datetime | None, until: datetime | None,
                   include_preview: bool) -> Any:
    query = select(ChatSession).where(ChatSession.bot_id == bot_id)
    if not include_preview:
        query = query.where(ChatSession.preview.is_(False))
    if role:
        query = query.where(ChatSession.role == role)
    if since:
        query = query.where(ChatSession.updated_at >= since)
    if until:
        query = query.where(ChatSession.created_at < until)
    return query


def teacher_logs(bot_id: int, *, role: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, only: str | None = None, include_preview: bool = False,
                 limit: int = 50, offset: int = 0, language: str = "en") -> dict[str, Any]:
    """Conversations by label and role (``only``: failed, unanswered, low_confidence, up, down); closed below k."""
    state = logs_state(bot_id, language)
    if not state["open"]:
        return {**state, "items": [], "total": 0}
    labels = _labels(bot_id)
    items = []
    query = _conversations(bot_id, role, since, until, include_preview).order_by(ChatSession.updated_at.desc(),
                                                                                 ChatSession.id.desc())
    for conversation in db.session.scalars(query):
        messages = list(conversation.messages)
        feedback = _feedback_for([m.id for m in messages])
        rendered = [_message_dict(m, feedback.get(m.id)) for m in messages]
        if only and not _matches(only, messages, feedback):
            continue
        number = labels.get(conversation.pseudonym) if conversation.pseudonym else None
        items.append({"id": conversation.id, "participant": label(conversation.role, number),
                      "participant_number": number, "role": conversation.role, "preview": conversation.preview,
                      "title": conversation.title, "created_at": conversation.created_at.isoformat(),
                      "updated_at": conversation.updated_at.isoformat(), "messages": rendered})
    return {**state, "total": len(items), "items": items[offset:offset + max(1, min(limit, 500))]}


def _message_dict(m: Message, feedback: Feedback | None) -> dict[str, Any]:
    return {"id": m.id, "role": m.role, "text": m.text, "status": m.status, "error_code": m.error_code,
            "reply_to": m.reply_to_id, "citations": m.citations, "confidence": m.confidence,
            "created_at": m.created_at.isoformat(),
            "feedback": {"value": feedback.value, "comment": feedback.comment} if feedback else None}


def _matches(only: str, messages: list[Message], feedback: dict[int, Feedback]) -> bool:
    answered = {m.reply_to_id for m in messages if m.role == "assistant" and m.status == "ok"}
    if only == "failed":
        return any(m.status == "failed" for m in messages)
    if only == "unanswered":
        return any(m.role == "user" and m.id not in answered for m in messages)
    if only == "low_confidence":
        return any(m.confidence is not None and m.confidence < 0.5 for m in messages)
    if only in ("up", "down"):
        return any(f.value == only for f in feedback.values())
    return True


def export_rows(bot_id: int, include_preview: bool = False) -> list[dict[str, Any]]:
    """One row per question (with its answer and feedback) for CSV/JSON export; empty while logs are closed."""
    if not logs_state(bot_id)["open"]:
        return []
    labels = _labels(bot_id)
    rows = []
    query = _conversations(bot_id, None, None, None, include_preview).order_by(ChatSession.created_at,
                                                                               ChatSession.id)
    for conversation in db.session.scalars(query):
        messages = list(conversation.messages)
        answers = {m.reply_to_id: m for m in messages if m.role == "assistant"}
        feedback = _feedback_for([m.id for m in answers.values()])
        number = labels.get(conversation.pseudonym) if conversation.pseudonym else None
        for question in (m for m in messages if m.role == "user"):
            answer = answers.get(question.id)
            fb = feedback.get(answer.id) if answer else None
            rows.append({"conversation_id": conversation.id, "participant": label(conversation.role, number),
                         "role": conversation.role, "asked_at": question.created_at.isoformat(),
                         "question": question.text, "answer": answer.text if answer else "",
                         "status": answer.status if answer else "unanswered",
                         "error_code": (answer.error_code or "") if answer else "",
                         "confidence": answer.confidence if answer and answer.confidence is not None else "",
                         "feedback": fb.value if fb else "", "feedback_comment": fb.comment if fb else ""})
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of export rows; cells that spreadsheets would run as formulas are neutralised."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k, "")) for k in EXPORT_FIELDS})
    return out.getvalue()


def _cell(value: Any) -> Any:
    # CSV injection: a student's question starting with "=" must not become a formula in the teacher's Excel.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
