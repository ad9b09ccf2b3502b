"""Privacy records: participant labels, consent notices and records, the audit trail and retention policies."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.extensions import UTCDateTime, db, utcnow


class ParticipantLabel(db.Model):  # type: ignore[name-defined]
    """The number in "Student 17": stable within a course, assigned in order of first use."""

    __tablename__ = "participant_label"
    __table_args__ = (UniqueConstraint("bot_id", "pseudonym"), UniqueConstraint("bot_id", "number"))

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"))
    pseudonym: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentNotice(db.Model):  # type: ignore[name-defined]
    """A version of the consent text for one platform (issuer; ``""`` for all) and language; never edited."""

    __tablename__ = "consent_notice"
    __table_args__ = (UniqueConstraint("issuer", "language", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255), default="")
    language: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentRecord(db.Model):  # type: ignore[name-defined]
    """A participant's answer to one notice version, and whether the bot used an external model then."""

    __tablename__ = "consent_record"
    __table_args__ = (Index("ix_consent_record_bot_id_pseudonym", "bot_id", "pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"))
    pseudonym: Mapped[str] = mapped_column(String(64))
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("consent_notice.id", ondelete="SET NULL"),
                                                  nullable=True)  # None: the built-in default text
    notice_version: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(16))
    external_model: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """Who (role + pseudonym) did what to which record, when: exports, erasures, deletions, settings. No content."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Kept (as NULL) when the bot is deleted: the deletion itself stays on record for the platform.
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("course_bot.id", ondelete="SET NULL"), nullable=True,
                                               index=True)
    issuer: Mapped[str] = mapped_column(String(255), default="")
    actor_role: Mapped[str] = mapped_column(String(32))  # a role, or "admin_cli" / "system"
    actor_pseudonym: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # counts and settings, no text
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RetentionPolicy(db.Model):  # type: ignore[name-defined]
    """Retention for a platform (``bot_id`` NULL) or a stricter override for one of its bots; 0 = never."""

    __tablename__ = "retention_policy"
    __table_args__ = (UniqueConstraint("issuer", "bot_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), nullable=True)
    anonymize_days: Mapped[int] = mapped_column(Integer)
    delete_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
