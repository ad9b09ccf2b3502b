"""Course materials: upload with limits and content-hash idempotence, delete everywhere, re-index, FAQ, listing.

Services only ``flush()``; the view (or CLI command) commits. Ingestion itself runs in a worker
(:mod:`course_bots.materials.jobs`): a view calls :func:`upload_material`, commits, then
:func:`course_bots.materials.jobs.dispatch`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from course_bots.errors import ServiceError
from course_bots.materials.models import CourseIndexVersion, FaqEntry, Material, MaterialChunk, MaterialStatus
from course_bots.materials.models import MaterialPageEdit
# the feature's face: chat searches; test questions name a hit's file
from course_bots.materials.course_index import (  # noqa: F401
    mark_search_ready, material_id_of, search_course, search_ready)
from course_bots.materials.links import material_file_url  # noqa: F401  (the feature's face: citations link)
from course_bots.materials.storage import DatabaseStorage, Storage, StorageError, current_storage
from lti_tool.extensions import current_config, db, utcnow
from retrieval.errors import EmptyDocumentError, FileTooLargeError, IngestError
from retrieval.loaders import sniff

log = logging.getLogger(__name__)

MB = 1_000_000  # decimal megabytes: the one MB of limits, messages and the README


class MaterialError(ServiceError):
    """An upload or change the teacher must fix (400 unless told)."""


@dataclass(frozen=True)
class UploadResult:
    """The material an upload produced and whether it needs ingestion (False: an unchanged re-upload)."""

    material: Material
    queued: bool


def sanitise_filename(name: str) -> str:
    """A display name: no directories, no control characters, NFC, at most 200 characters (umlauts kept)."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if not name:
        return "upload"
    if len(name) > 200:
        stem, ext = os.path.splitext(name)
        name = stem[: 200 - len(ext[:20])] + ext[:20]
    return name


def bump_index_version(bot_id: int) -> None:
    """Tell every process that this course's search index is stale (checked on each search)."""
    result = db.session.execute(update(CourseIndexVersion).where(CourseIndexVersion.bot_id == bot_id)
                                .values(version=CourseIndexVersion.version + 1, updated_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with db.session.begin_nested():
                db.session.add(CourseIndexVersion(bot_id=bot_id, version=1))
        except IntegrityError:  # another process created it meanwhile
            bump_index_version(bot_id)
    db.session.flush()


def course_bytes(bot_id: int) -> int:
    """Bytes of all materials of a course (what the per-course limit counts)."""
    return int(db.session.execute(select(func.coalesce(func.sum(Material.size), 0))
                                  .where(Material.bot_id == bot_id)).scalar() or 0)


def check_upload(data: bytes, filename: str, media_type: str | None = None) -> str:
    """Validate size, emptiness and type before storing; returns the detected media type."""
    limit = current_config().max_upload_mb * MB
    if len(data) > limit:
        error = FileTooLargeError(len(data), limit)
        raise MaterialError("too_large", error.message, 413)
    if not data.strip():
        raise MaterialError("empty", EmptyDocumentError("This file is empty.").message)
    try:
        kind = sniff.sniff_kind(data, filename, media_type)
    except IngestError as exc:
        raise MaterialError(exc.code, exc.message, 415 if exc.code == "unsupported_type" else 400) from exc
    return sniff.MEDIA_TYPES[kind]


def upload_material(bot_id: int, filename: str, data: bytes, media_type: str | None = None,
                    title: str | None = None) -> UploadResult:
    """Store a file and queue it; an unchanged re-upload returns the existing material and queues nothing."""
    filename = sanitise_filename(filename)
    detected = check_upload(data, filename, media_type)
    digest = hashlib.sha256(data).hexdigest()
    existing = db.session.scalars(select(Material).filter_by(bot_id=bot_id, sha256=digest)).first()
    if existing is not None:
        if existing.status == MaterialStatus.FAILED:
            _requeue(existing)
            return UploadResult(existing, True)
        return UploadResult(existing, False)
    config = current_config()
    if course_bytes(bot_id) + len(data) > config.max_course_mb * MB:
        raise MaterialError("course_quota", f"This course's materials would exceed {config.max_course_mb} MB. "
                            "Delete materials you no longer need, then upload again.", 413)
    key = f"{bot_id}/{digest}"
    try:
        current_storage().put(key, data)
    except StorageError as exc:
        log.error("storing an upload for bot %s failed: %s", bot_id, exc)
        raise MaterialError("storage_unavailable", "The file could not be stored. Please try again later.",
                            503) from exc
    previous = db.session.scalars(select(Material).filter_by(bot_id=bot_id, filename=filename)
                                  .where(Material.replaces_id.is_(None))
                                  .order_by(Material.id.desc())).first()
    material = Material(bot_id=bot_id, filename=filename, title=title, media_type=detected, size=len(data),
                        sha256=digest, storage_key=key, status=MaterialStatus.QUEUED,
                        replaces_id=previous.id if previous is not None else None)
    db.session.add(material)
    db.session.flush()
    log.info("material %s queued for bot %s (%d bytes)", material.id, bot_id, len(data))
    return UploadResult(material, True)


def _requeue(material: Material) -> None:
    """Put a material back in the queue with fresh progress (the worker re-parses it)."""
    material.status = MaterialStatus.QUEUED
    material.progress_done = material.progress_total = 0
    material.error_code = material.error_message = None
    material.attempts = 0
    material.worker_id = None
    material.heartbeat_at = None
    db.session.flush()


def get_material(bot_id: int, material_id: int) -> Material | None:
    """A material of this bot, or None (never another course's)."""
    material = db.session.get(Material, material_id)
    return material if material is not None and material.bot_id == bot_id else None


def list_materials(bot_id: int) -> list[Material]:
    """The course's materials, newest first."""
    return list(db.session.scalars(select(Material).filter_by(bot_id=bot_id).order_by(Material.id.desc())))


def delete_material(material: Material) -> None:
    """Delete a material and its chunks; its stored file goes once this commits (unless another material shares it)."""
    bot_id, key = material.bot_id, material.storage_key
    db.session.execute(MaterialChunk.__table__.delete().where(MaterialChunk.material_id == material.id))
    db.session.delete(material)
    db.session.flush()
    shared = db.session.scalars(select(Material.id).filter_by(storage_key=key)).first()
    if shared is None:
        delete_file_after_commit(bot_id, key)
    bump_index_version(bot_id)


def delete_bot_files(bot_id: int) -> None:
    """Remove a deleted bot's stored originals once its deletion commits (rows, chunks and vectors cascade)."""
    for key in db.session.scalars(select(Material.storage_key).filter_by(bot_id=bot_id)):
        delete_file_after_commit(bot_id, key)


_FILES_TO_DELETE = "coursebots.files_to_delete"


def delete_file_after_commit(bot_id: int, key: str) -> None:
    """Remove a stored file when this transaction commits; a failed commit or a rollback keeps the file.

    A file removed before the commit would leave a row pointing at nothing when the commit then fails. Blobs in the
    database are deleted in the transaction itself (they are rolled back with it).
    """
    storage = current_storage()
    if isinstance(storage, DatabaseStorage):
        storage.delete(key)
        return
    db.session.info.setdefault(_FILES_TO_DELETE, []).append((storage, bot_id, key))


@event.listens_for(db.session, "after_commit")
def _delete_committed_files(session: Session) -> None:
    """Remove the files whose rows the committed transaction deleted (a failure leaves an orphan, logged)."""
    files: list[tuple[Storage, int, str]] = session.info.pop(_FILES_TO_DELETE, [])
    for storage, bot_id, key in files:
        try:
            storage.delete(key)
        except Exception as exc:  # the commit stands; an orphaned file is harmless
            log.warning("could not delete a stored file of bot %s: %s", bot_id,
                        exc if isinstance(exc, StorageError) else type(exc).__name__)


@event.listens_for(db.session, "after_transaction_end")
def _forget_uncommitted_files(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ended without committing (rollback, failed commit, close) deletes no file."""
    if transaction.parent is None:
        session.info.pop(_FILES_TO_DELETE, None)


def reindex_material(material: Material) -> None:
    """Parse and embed a material again (e.g. after a loader fix or a new embedding model)."""
    _requeue(material)


def copy_page_edits(source: Material, target: Material) -> int:
    """Give a copy of a material (a new semester's course) its source's page edits; returns how many it got."""
    have = {(sha256, number) for sha256, number in db.session.execute(
        select(MaterialPageEdit.sha256, MaterialPageEdit.number).where(MaterialPageEdit.material_id == target.id))}
    added = 0
    for edit in db.session.scalars(select(MaterialPageEdit).filter_by(material_id=source.id)):
        if (edit.sha256, edit.number) in have:
            continue
        db.session.add(MaterialPageEdit(bot_id=target.bot_id, material_id=target.id, sha256=edit.sha256,
                                        number=edit.number, excluded=edit.excluded, replacement=edit.replacement,
                                        original_text=edit.original_text, edited_at=edit.edited_at))
        added += 1
    db.session.flush()
    return added


def reindex_outdated(model_id: str, bot_id: int | None = None) -> list[int]:
    """Queue ready materials whose vectors come from another embedding model; returns their ids."""
    query = select(Material).where(Material.status == MaterialStatus.READY,
                                   Material.embedding_model.is_distinct_from(model_id))
    if bot_id is not None:
        query = query.where(Material.bot_id == bot_id)
    if not current_config().is_sqlite:  # web processes starting together: each material is queued by one
        query = query.with_for_update(skip_locked=True)
    materials = list(db.session.scalars(query))
    for material in materials:
        _requeue(material)
    return [m.id for m in materials]


def material_json(material: Material) -> dict[str, Any]:
    """What the teacher page shows per file: status, progress, pages, chunks, error."""
    return {
        "id": material.id, "filename": material.filename, "title": material.display_title,
        "media_type": material.media_type, "size": material.size, "sha256": material.sha256,
        "status": material.status,
        "progress": {"done": material.progress_done, "total": material.progress_total},
        "error": ({"code": material.error_code, "message": material.error_message}
                  if material.status == MaterialStatus.FAILED else None),
        "pages": material.pages, "chunks": material.chunk_count, "language": material.language,
        "students_may_open": material.students_may_open, "replaces": material.replaces_id,
        "created_at": material.created_at.isoformat() if material.created_at else None,
        "updated_at": material.updated_at.isoformat() if material.updated_at else None,
    }


def set_students_may_open(material: Material, allowed: bool) -> None:
    """Whether students may open the original file from a citation."""
    material.students_may_open = bool(allowed)
    db.session.flush()


# --- FAQ entries: the teacher's corrections, searched as boosted FAQ chunks -----------------------------------

def _check_faq(question: str, answer: str) -> tuple[str, str]:
    question, answer = (question or "").strip(), (answer or "").strip()
    if not question or not answer:
        raise MaterialError("invalid_faq", "An FAQ entry needs both a question and an answer.")
    if len(question) > 2000 or len(answer) > 20000:
        raise MaterialError("invalid_faq", "This FAQ entry is too long (question 2,000, answer 20,000 characters).")
    return question, answer


def list_faq(bot_id: int) -> list[FaqEntry]:
    """The course's FAQ entries, oldest first."""
    return list(db.session.scalars(select(FaqEntry).filter_by(bot_id=bot_id).order_by(FaqEntry.id)))


def get_faq(bot_id: int, faq_id: int) -> FaqEntry | None:
    """One FAQ entry of this bot, or None."""
    entry = db.session.get(FaqEntry, faq_id)
    return entry if entry is not None and entry.bot_id == bot_id else None


def create_faq(bot_id: int, question: str, answer: str) -> FaqEntry:
    """Add an FAQ entry (embedded when the course index is next built)."""
    question, answer = _check_faq(question, answer)
    entry = FaqEntry(bot_id=bot_id, question=question, answer=answer)
    db.session.add(entry)
    db.session.flush()
    bump_index_version(bot_id)
    return entry


def update_faq(entry: FaqEntry, question: str, answer: str) -> FaqEntry:
    """Change an FAQ entry."""
    entry.question, entry.answer = _check_faq(question, answer)
    db.session.flush()
    bump_index_version(entry.bot_id)
    return entry


def delete_faq(entry: FaqEntry) -> None:
    """Remove an FAQ entry."""
    bot_id = entry.bot_id
    db.session.delete(entry)
    db.session.flush()
    bump_index_version(bot_id)


def faq_json(entry: FaqEntry) -> dict[str, Any]:
    """An FAQ entry for the API."""
    return {"id": entry.id, "question": entry.question, "answer": entry.answer,
            "created_at": entry.created_at.isoformat() if entry.created_at else None,
            "updated_at": entry.updated_at.isoformat() if entry.updated_at else None}
