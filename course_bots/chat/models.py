"""Chat records: conversations, messages, feedback and usage events of one course bot.

They carry the per-course pseudonym and the role, never the LTI user id, names or e-mails; texts are stored only
after scrubbing (:mod:`course_bots.chat.conversations` is the only writer).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.extensions import UTCDateTime, db, utcnow


class ChatSession(db.Model):  # type: ignore[name-defined]
    """One conversation of one participant (pseudonym + role) with a course bot."""

    __tablename__ = "chat_session"
    __table_args__ = (Index("ix_chat_session_bot_id_pseudonym", "bot_id", "pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"))
    pseudonym: Mapped[str | None] = mapped_column(String(64), nullable=True)  # dropped when anonymized
    role: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255), default="")
    preview: Mapped[bool] = mapped_column(Boolean, default=False)  # a teacher's "as a student" chat
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    anonymized_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    messages: Mapped[list["Message"]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True, order_by="Message.id")


class Message(db.Model):  # type: ignore[name-defined]
    """A scrubbed question (role ``user``) or answer (role ``assistant``, replying to a question)."""

    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("session_id", "client_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("chat_session.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # "user" | "assistant"
    text: Mapped[str] = mapped_column(Text, default="")
    # Set by the browser per question, so a retry after a network error never stores it twice.
    client_message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reply_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="ok")  # "ok" | "failed"
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    citations: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(255), nullable=True)  # the model's label, as shown then
    # Who wrote the answer: openai / local (a language model), extractive (quoted passages), fallback (quoted passages
    # while the model was unavailable), refusal (not covered). NULL for answers stored before it was recorded.
    answer_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    session: Mapped[ChatSession] = relationship(back_populates="messages")


class Feedback(db.Model):  # type: ignore[name-defined]
    """Thumbs up/down and an optional scrubbed comment on one answer (one per answer, last one wins)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), unique=True)
    value: Mapped[str] = mapped_column(String(8))  # "up" | "down"
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsageEvent(db.Model):  # type: ignore[name-defined]
    """Daily counters per bot, free of pseudonyms: what admins see about usage."""

    __tablename__ = "usage_event"
    __table_args__ = (UniqueConstraint("bot_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    questions: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
