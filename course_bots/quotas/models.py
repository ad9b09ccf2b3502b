"""Fair-use records: the administrator's limits per platform and role, teachers' tighter overrides, limit hits.

A limit column holds a number, or ``NULL`` for "not set here" (the next level decides: bot override -> platform
rule -> ``COURSEBOTS_QUOTA_*`` default). On the platform level 0 means "no limit"; an override is always >= 1.
Limit hits carry the course pseudonym and role, never an LTI user id.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.extensions import UTCDateTime, db, utcnow

ROLES = ("learner", "teacher")  # whose questions a rule limits
PLATFORM = "platform"  # the role name of a platform's daily budget (all its bots and roles together)
LIMIT_FIELDS = ("questions_per_day", "tokens_per_day", "burst_per_minute")


class PlatformQuota(db.Model):  # type: ignore[name-defined]
    """An administrator's limits for one role on one platform, or the platform's daily budget (role ``platform``)."""

    __tablename__ = "quota_platform"
    __table_args__ = (UniqueConstraint("issuer", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    questions_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    burst_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BotQuota(db.Model):  # type: ignore[name-defined]
    """A teacher's override of one role's limits in one course bot (only ever tighter than the platform's)."""

    __tablename__ = "quota_bot"
    __table_args__ = (UniqueConstraint("bot_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    questions_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    burst_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuotaHit(db.Model):  # type: ignore[name-defined]
    """How often one participant (pseudonym, role) of a bot was refused for one reason on one day."""

    __tablename__ = "quota_hit"
    __table_args__ = (UniqueConstraint("bot_id", "day", "pseudonym", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    role: Mapped[str] = mapped_column(String(16))
    pseudonym: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))  # quota_exceeded | rate_limited | model_busy
    hits: Mapped[int] = mapped_column(Integer, default=0)
