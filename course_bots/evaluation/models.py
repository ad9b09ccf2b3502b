"""A teacher's test questions (each with the file, and optionally the page, that should answer it) and their runs."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.extensions import UTCDateTime, db, utcnow

__all__ = ["TestQuestion", "TestRun", "QuestionSource", "RunStatus"]


class QuestionSource:
    """Where a test question's text came from: typed by the teacher, or copied from a logged (scrubbed) question."""

    TEACHER = "teacher"
    STUDENT_LOG = "student_log"
    ALL = (TEACHER, STUDENT_LOG)


class RunStatus:
    """A run is claimed as running, then done (or failed)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TestQuestion(db.Model):  # type: ignore[name-defined]
    """A question the teacher expects the course's materials to answer from a given file (and page).

    The text is the teacher's own content, also when copied from a student's logged question: that copy is the
    already-scrubbed text, labelled ``student_log``, and keeps no link to the student, the conversation or the message.
    """

    __tablename__ = "test_question"
    __test__ = False  # not a pytest test class

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    expected_file: Mapped[str] = mapped_column(String(255))  # a material's file name (survives a replaced upload)
    expected_page: Mapped[int | None] = mapped_column(Integer, nullable=True)  # page or slide, 1-based
    source: Mapped[str] = mapped_column(String(16), default=QuestionSource.TEACHER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TestRun(db.Model):  # type: ignore[name-defined]
    """One check of all test questions of a course against what the course looked like (its ``stamp``).

    The stamp joins the course's index version, the settings' last change and the questions, and is unique per
    course: of two processes that find the same run due, one inserts it and the other finds it taken.
    """

    __tablename__ = "test_run"
    __test__ = False
    __table_args__ = (UniqueConstraint("bot_id", "stamp"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    stamp: Mapped[str] = mapped_column(String(128))
    index_version: Mapped[int] = mapped_column(Integer, default=0)
    settings_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    questions_hash: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(32), default="first")  # first | materials | settings | questions
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    total: Mapped[int] = mapped_column(Integer, default=0)
    found_1: Mapped[int] = mapped_column(Integer, default=0)
    found_3: Mapped[int] = mapped_column(Integer, default=0)
    found_5: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    mrr: Mapped[float] = mapped_column(Float, default=0.0)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
