"""Ingest one material: claim → parse → chunk → embed (reusing vectors of unchanged passages) → store chunks.

A worker owns this unit of work, so it commits (progress must be visible to the teacher page while it runs).
Typed loader errors become the material's teacher-readable failure; a bad file never stops the others. The file
is read in a limited child process (:mod:`course_bots.materials.parse_sandbox`); chunking and embedding run here.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import replace
from typing import Callable

import numpy as np
from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm.exc import ObjectDeletedError

from course_bots.materials.course_index import get_embedder
from course_bots.materials.models import Material, MaterialChunk, MaterialStatus, vector_from_bytes
from course_bots.materials.models import vector_to_bytes
from course_bots.materials.operations import bump_index_version, delete_material
from course_bots.materials.pages import apply_edits, carry_edits, chunk_pages, current_edits, page_units, store_pages
from course_bots.materials.parse_sandbox import parse_material
from course_bots.materials.storage import StorageError, current_storage
from lti_tool import metrics
from lti_tool.extensions import current_config, db, utcnow
from retrieval.errors import IngestError
from retrieval.search import index_text
from retrieval.types import Chunk, Embedder

log = logging.getLogger(__name__)

EMBED_BATCH = 32
INTERNAL_ERROR = ("Something went wrong while reading this file. Try re-indexing it; if it fails again, "
                  "contact your administrator.")
STORAGE_ERROR = "The uploaded file could not be read from storage. Upload it again."
Progress = Callable[[int, int], None]


class _Aborted(Exception):
    """The material was deleted or re-queued while this worker processed it."""


def content_hash(chunk: Chunk) -> str:
    """Hash of exactly the text that is embedded (title, headings, body)."""
    return hashlib.sha256(index_text(chunk).encode("utf-8")).hexdigest()


def claim(material_id: int, worker_id: str) -> bool:
    """Atomically move a queued material to parsing for this worker (False when another worker has it)."""
    result = db.session.execute(
        update(Material).where(Material.id == material_id, Material.status == MaterialStatus.QUEUED)
        .values(status=MaterialStatus.PARSING, attempts=Material.attempts + 1, worker_id=worker_id,
                heartbeat_at=utcnow(), progress_done=0, progress_total=0, error_code=None, error_message=None,
                updated_at=utcnow()))
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


class Heartbeat:
    """Touches ``heartbeat_at`` from a side thread while parsing or embedding runs (crash detection)."""

    def __init__(self, app: Flask, material_id: int, worker_id: str, interval: float) -> None:
        """Prepare; :meth:`__enter__` starts the thread."""
        self.app, self.material_id, self.worker_id, self.interval = app, material_id, worker_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{material_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.app.app_context(), db.engine.begin() as conn:
                    conn.execute(update(Material).where(Material.id == self.material_id,
                                                        Material.worker_id == self.worker_id)
                                 .values(heartbeat_at=utcnow()))
            except Exception as exc:  # a missed beat is retried; a long outage makes the job stale, as it should
                log.warning("heartbeat for material %s failed: %s", self.material_id, type(exc).__name__)

    def __enter__(self) -> "Heartbeat":
        """Start beating."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop beating."""
        self._stop.set()
        self._thread.join(timeout=5)


def _still_mine(material_id: int, worker_id: str) -> None:
    """Stop when the teacher deleted or re-queued the material meanwhile."""
    row = db.session.execute(select(Material.status, Material.worker_id).where(Material.id == material_id)).first()
    if row is None or row.worker_id != worker_id or row.status not in MaterialStatus.ACTIVE:
        raise _Aborted()


def _fail(material_id: int, code: str, message: str) -> None:
    db.session.rollback()
    db.session.execute(update(Material).where(Material.id == material_id)
                       .values(status=MaterialStatus.FAILED, error_code=code, error_message=message,
                               heartbeat_at=None, updated_at=utcnow()))
    db.session.commit()


def _reading_progress(material_id: int, done: int, total: int) -> None:
    """While OCR reads a scan (seconds per page), the teacher sees pages read of pages to read."""
    db.session.execute(update(Material).where(Material.id == material_id)
                       .values(progress_done=done, progress_total=total, updated_at=utcnow()))
    db.session.commit()


def _reusable_vectors(model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
    """Vectors already stored for these exact passages with this model, in any course.

    Only a passage the new file itself contains can match, so nothing of another course leaks; a copied
    course or slides shared between courses are not embedded twice.
    """
    found: dict[str, np.ndarray] = {}
    unique = sorted(set(hashes))
    for start in range(0, len(unique), 500):
        rows = db.session.execute(
            select(MaterialChunk.content_hash, MaterialChunk.vector)
            .where(MaterialChunk.embedding_model == model_id,
                   MaterialChunk.content_hash.in_(unique[start:start + 500]), MaterialChunk.vector.is_not(None)))
        for digest, vector in rows:
            if vector is not None:
                found.setdefault(digest, vector_from_bytes(vector))
    return found


def _embed(material: Material, chunks: list[Chunk], hashes: list[str], embedder: Embedder, worker_id: str,
           on_progress: Progress | None) -> list[np.ndarray]:
    """Vectors for every chunk: reused by hash where possible, the rest embedded in batches with progress."""
    material_id = material.id
    known = _reusable_vectors(embedder.model_id, hashes)
    missing = [i for i, h in enumerate(hashes) if h not in known]
    missing_hashes = list(dict.fromkeys(hashes[i] for i in missing))  # identical passages embedded once
    material.status = MaterialStatus.EMBEDDING
    material.progress_done, material.progress_total = 0, len(missing_hashes)
    db.session.commit()
    first_of = {hashes[i]: i for i in reversed(missing)}
    for start in range(0, len(missing_hashes), EMBED_BATCH):
        batch = missing_hashes[start:start + EMBED_BATCH]
        vectors = embedder.embed_passages([index_text(chunks[first_of[h]]) for h in batch])
        known.update(zip(batch, vectors))
        _still_mine(material_id, worker_id)
        material.progress_done = start + len(batch)
        material.heartbeat_at = utcnow()
        db.session.commit()
        if on_progress is not None:
            on_progress(material.progress_done, material.progress_total)
    log.info("material %s: %d chunks, %d embedded, %d reused", material_id, len(chunks), len(missing_hashes),
             len(chunks) - len(missing))
    return [known[h] for h in hashes]


def _store(material: Material, chunks: list[Chunk], hashes: list[str], vectors: list[np.ndarray],
           model_id: str) -> None:
    """Replace the material's chunks, mark it ready, retire the version it replaces, invalidate indexes."""
    db.session.execute(MaterialChunk.__table__.delete().where(MaterialChunk.material_id == material.id))
    db.session.add_all(MaterialChunk(
        material_id=material.id, bot_id=material.bot_id, ordinal=c.ordinal, text=c.text, position=c.position,
        position_end=c.position_end, locator=c.locator.value, heading_path=list(c.heading_path),
        language=c.language, token_count=c.token_count, embedding_model=model_id, vector=vector_to_bytes(v),
        content_hash=h) for c, h, v in zip(chunks, hashes, vectors))
    material.status = MaterialStatus.READY
    material.chunk_count = len(chunks)
    material.embedding_model = model_id
    material.heartbeat_at = None
    if material.replaces_id is not None:
        # The new version is ready: every older upload under this name leaves the course now (also one
        # still queued in between, so versions uploaded in quick succession never pile up).
        older = db.session.scalars(select(Material).where(
            Material.bot_id == material.bot_id, Material.filename == material.filename, Material.id < material.id))
        for old in list(older):
            carry_edits(old, material)  # the teacher decides per page whether the old version's edits stay
            delete_material(old)
        material.replaces_id = None
    bump_index_version(material.bot_id)
    db.session.commit()


def process_material(material_id: int, worker_id: str, embedder: Embedder | None = None,
                     on_progress: Progress | None = None) -> str:
    """Run one queued material through the pipeline; returns its final status (or ``skipped``), counted on /metrics."""
    started = time.monotonic()
    status = _process(material_id, worker_id, embedder, on_progress)
    if status != "skipped":
        metrics.INGESTION_JOBS.labels(outcome=status).inc()
        metrics.INGESTION_SECONDS.observe(time.monotonic() - started)
    return status


def _process(material_id: int, worker_id: str, embedder: Embedder | None, on_progress: Progress | None) -> str:
    """The pipeline of :func:`process_material`."""
    if not claim(material_id, worker_id):
        return "skipped"
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = current_config()
    interval = max(0.2, config.ingest_stale_seconds / 5)
    try:
        with Heartbeat(app, material_id, worker_id, interval):
            material = db.session.get(Material, material_id)
            if material is None:
                return "skipped"
            data = current_storage().get(material.storage_key)
            # Read in a limited child process: a hostile file kills that child, never this worker.
            document = parse_material(data, material.filename, material.media_type, f"material:{material.id}",
                                      on_ocr_page=lambda done, total: _reading_progress(material_id, done, total))
            document = replace(document, title=material.display_title)
            units = page_units(document)
            # The teacher's exclusions and replacements of this file version are what is indexed.
            chunks, passages = chunk_pages(apply_edits(document, units, current_edits(material)))
            material.pages = document.page_count or None
            material.language = document.language  # committed with the switch to "embedding" (one write)
            hashes = [content_hash(c) for c in chunks]
            embedder = embedder or get_embedder(app)
            vectors = _embed(material, chunks, hashes, embedder, worker_id, on_progress)
            _still_mine(material_id, worker_id)
            store_pages(material, document, units, passages)
            _store(material, chunks, hashes, vectors, embedder.model_id)
            return MaterialStatus.READY
    except (_Aborted, ObjectDeletedError):
        db.session.rollback()
        log.info("material %s changed while processing; this run stops", material_id)
        return "skipped"
    except IngestError as exc:
        log.info("material %s failed: %s", material_id, exc.code)
        _fail(material_id, exc.code, exc.message)
    except StorageError as exc:
        log.error("material %s: stored file unreadable: %s", material_id, exc)
        _fail(material_id, "file_missing", STORAGE_ERROR)
    except Exception as exc:  # any other failure is this file's, never the worker's
        log.exception("material %s failed unexpectedly: %s", material_id, type(exc).__name__)
        _fail(material_id, "internal_error", INTERNAL_ERROR)
    return MaterialStatus.FAILED
