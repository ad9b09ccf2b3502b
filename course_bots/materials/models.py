"""Course materials: uploaded files with status, their chunks and vectors, teacher FAQ entries, index versions."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.extensions import UTCDateTime, db, utcnow

__all__ = ["Material", "MaterialChunk", "FaqEntry", "MaterialBlob", "CourseIndexVersion", "MaterialStatus",
           "MaterialPage", "MaterialPageEdit", "vector_to_bytes", "vector_from_bytes"]


class MaterialStatus:
    """The states a material passes: queued → parsing → embedding (n/m) → ready | failed."""

    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    READY = "ready"
    FAILED = "failed"
    ACTIVE = (PARSING, EMBEDDING)


def vector_to_bytes(vector: Any) -> bytes:
    """A vector as little-endian float32 bytes (portable across SQLite and PostgreSQL)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes) -> np.ndarray:
    """The float32 vector stored by :func:`vector_to_bytes`."""
    return np.frombuffer(data, dtype="<f4")


class Material(db.Model):  # type: ignore[name-defined]
    """One uploaded file of a course and where its ingestion stands (the row is also the job's state)."""

    __tablename__ = "material"
    __table_args__ = (UniqueConstraint("bot_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))  # sanitised display name
    title: Mapped[str | None] = mapped_column(String(255), nullable=True)  # citation title when not the name
    media_type: Mapped[str] = mapped_column(String(127), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=MaterialStatus.QUEUED, index=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    students_may_open: Mapped[bool] = mapped_column(Boolean, default=False)
    # A changed file with the same name replaces this material once it is ready (the old stays until then).
    replaces_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Job bookkeeping for crash recovery: a worker that stops heartbeating lost the job.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def display_title(self) -> str:
        """What citations show: the title when one was given, else the file name."""
        return self.title or self.filename


class MaterialChunk(db.Model):  # type: ignore[name-defined]
    """A retrievable piece of a material with its position and its passage vector."""

    __tablename__ = "material_chunk"

    id: Mapped[int] = mapped_column(primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id", ondelete="CASCADE"), index=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    position_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    locator: Mapped[str] = mapped_column(String(16), default="section")
    heading_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    token_count: Mapped[int] = mapped_column(Integer, default=0)
    embedding_model: Mapped[str | None] = mapped_column(String(255), nullable=True)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Hash of exactly the embedded text: an unchanged passage in a changed file keeps its vector.
    content_hash: Mapped[str] = mapped_column(String(64), index=True)


class FaqEntry(db.Model):  # type: ignore[name-defined]
    """A teacher-written question and answer (a correction); retrieved as an FAQ chunk with a boost."""

    __tablename__ = "faq_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MaterialBlob(db.Model):  # type: ignore[name-defined]
    """Original file bytes when ``COURSEBOTS_STORAGE=database`` (several machines, no shared folder)."""

    __tablename__ = "material_blob"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CourseIndexVersion(db.Model):  # type: ignore[name-defined]
    """A per-bot counter bumped on every material change; each process compares it to its cached index."""

    __tablename__ = "course_index_version"

    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MaterialPage(db.Model):  # type: ignore[name-defined]
    """The text the reader extracted from one page, slide or section of a material, and the passages made of it.

    Written by each ingestion (what the teacher reviews); ``text`` is always the file's own text, before edits.
    """

    __tablename__ = "material_page"
    __table_args__ = (UniqueConstraint("material_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # page/slide number; sections are counted 1, 2, ...
    locator: Mapped[str] = mapped_column(String(16), default="page")  # what ``number`` counts: page, slide, section
    heading: Mapped[str] = mapped_column(Text, default="")  # a section's heading path, " › "-joined
    text: Mapped[str] = mapped_column(Text, default="")
    passages: Mapped[list[int]] = mapped_column(JSON, default=list)  # ordinals of the chunks made of this page


class MaterialPageEdit(db.Model):  # type: ignore[name-defined]
    """A teacher's exclusion or replacement of one page of one file version (``sha256``).

    An edit whose ``sha256`` is not its material's belongs to an earlier version: it is carried over when a new
    version replaces the file, shown beside the new text and not applied until the teacher keeps it.
    """

    __tablename__ = "material_page_edit"
    __table_args__ = (UniqueConstraint("material_id", "sha256", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    material_id: Mapped[int] = mapped_column(ForeignKey("material.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))  # the file version the edit was made for
    number: Mapped[int] = mapped_column(Integer)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    replacement: Mapped[str | None] = mapped_column(Text, nullable=True)  # as the teacher wrote it
    original_text: Mapped[str] = mapped_column(Text, default="")  # the page's text when the teacher edited it
    edited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
