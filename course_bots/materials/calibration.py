"""Fusion settings for an embedding model without a tuned entry, measured on this installation's own passages.

``retrieval.fusion.TUNED`` holds settings measured on labelled development sets for the models we ship. An admin
may name any other sentence-transformers model; for it, ``retrieval.fusion.auto_calibrate`` derives the "unrelated"
and "clearly related" cosines from unlabelled passages (no labelled data at the admin's site): here, the stored
passages of all courses, each course a group. It runs once per process in a background thread the first time an
index for such a model is built (until it finishes, the defaults apply), again when the installation has grown to
twice the passages it was measured on, and on demand with ``flask materials calibrate``. The result is deterministic
for the same passages, so every process arrives at the same values.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
from flask import Flask, current_app
from sqlalchemy import func, select

from course_bots.materials.models import Material, MaterialChunk, MaterialStatus, vector_from_bytes
from lti_tool.extensions import db
from retrieval.fusion import TUNED, FusionConfig, auto_calibrate, model_key
from retrieval.types import Embedder

log = logging.getLogger(__name__)

POOL = 3000  # passages read for one calibration (their stored vectors: nothing is embedded twice)
SAMPLES = 300  # sentences cut out and asked as queries


@dataclass(frozen=True)
class Calibration:
    """The measured settings and what they were measured on."""

    config: FusionConfig
    passages: int  # ready passages of this model in the installation when measured
    courses: int
    measured: bool  # False: too little text yet, the defaults apply


_RESULTS: dict[str, Calibration] = {}
_RUNNING: set[str] = set()
_LOCK = threading.Lock()


def needs_calibration(model_id: str | None) -> bool:
    """Whether a model has no tuned entry (the hashing test fake has no semantics to calibrate)."""
    key = model_key(model_id)
    return bool(key) and key not in TUNED and not key.startswith("hashing")


def current(model_id: str) -> FusionConfig | None:
    """This process's measured settings for an untuned model, or None (tuned, or not measured yet)."""
    result = _RESULTS.get(model_id)
    return result.config if result is not None and result.measured else None


def fusion_for(embedder: Embedder, app: Flask | None = None,
               on_done: Callable[[FusionConfig], None] | None = None) -> FusionConfig | None:
    """Settings for a new index: None for a tuned model, else the installation's (measured in the background)."""
    model_id = embedder.model_id
    if not needs_calibration(model_id):
        return None
    result = _RESULTS.get(model_id)
    if result is None or _grown(model_id, result):
        _start(app or current_app._get_current_object(), embedder, on_done)  # type: ignore[attr-defined]
    return current(model_id)


def _grown(model_id: str, result: Calibration) -> bool:
    """Whether the installation now holds twice the passages (or, unmeasured, at least ten more) of the last run."""
    count = _passage_count(model_id)
    return count >= max(2 * result.passages, result.passages + 10) if result.measured else count >= result.passages + 10


def _start(app: Flask, embedder: Embedder, on_done: Callable[[FusionConfig], None] | None) -> None:
    """Measure in a background thread (one per model and process); student questions never wait for it."""
    with _LOCK:
        if embedder.model_id in _RUNNING:
            return
        _RUNNING.add(embedder.model_id)

    def run() -> None:
        try:
            with app.app_context():
                result = calibrate(embedder)
            _RESULTS[embedder.model_id] = result
            if result.measured and on_done is not None:
                on_done(result.config)
        except Exception:  # noqa: BLE001 - a failed measurement leaves the defaults; the next build tries again
            log.exception("automatic calibration of the embedding model failed; the default settings stay")
        finally:
            with _LOCK:
                _RUNNING.discard(embedder.model_id)

    threading.Thread(target=run, name="coursebots-calibration", daemon=True).start()


def _ready_chunks(model_id: str):  # type: ignore[no-untyped-def]
    """Stored passages of ready materials embedded with this model."""
    return (select(MaterialChunk.text, MaterialChunk.bot_id, MaterialChunk.vector)
            .join(Material, Material.id == MaterialChunk.material_id)
            .where(Material.status == MaterialStatus.READY, MaterialChunk.embedding_model == model_id,
                   MaterialChunk.vector.is_not(None)))


def _passage_count(model_id: str) -> int:
    """How many ready passages of this model the installation holds."""
    query = select(func.count()).select_from(_ready_chunks(model_id).subquery())
    return int(db.session.execute(query).scalar() or 0)


def calibrate(embedder: Embedder, *, pool: int = POOL, samples: int = SAMPLES) -> Calibration:
    """Measure floor and ceiling on up to ``pool`` stored passages (a random draw, fixed seed), courses as groups."""
    total = _passage_count(embedder.model_id)
    # A fixed pseudo-random draw that every database orders alike: by a hash of the id, not by random().
    rows = db.session.execute(_ready_chunks(embedder.model_id)
                              .order_by((MaterialChunk.id * 2654435761) % 4294967291).limit(pool)).all()
    texts = [r.text for r in rows]
    groups = [str(r.bot_id) for r in rows]
    base = FusionConfig()
    if not rows:
        return Calibration(base, total, 0, False)
    vectors = np.vstack([vector_from_bytes(r.vector) for r in rows]).astype(np.float32)
    config = auto_calibrate(embedder, texts, groups, vectors=vectors, samples=samples, pool=pool, base=base)
    measured = config != base
    courses = len(set(groups))
    if measured:
        log.info("calibrated %s on %d passages of %d courses: dense floor %.3f, ceiling %.3f",
                 model_key(embedder.model_id), len(rows), courses, config.dense_floor, config.dense_ceiling)
    else:
        log.info("too little text to calibrate %s yet (%d passages, %d courses): default settings",
                 model_key(embedder.model_id), len(rows), courses)
    return Calibration(config, total, courses, measured)


def remember(model_id: str, result: Calibration) -> None:
    """Keep a measurement made outside the background thread (the CLI) for this process."""
    _RESULTS[model_id] = result


def forget() -> None:
    """Drop this process's measurements (tests; an admin's model change restarts the processes anyway)."""
    _RESULTS.clear()
