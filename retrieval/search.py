"""A course's search index: BM25 + dense vectors + fusion (+ optional reranking), implementing ``Index``."""
from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from retrieval.fusion import (FusionConfig, calibrate_dense, candidate_pool, dense_weight_for, fuse, score_weight,
                              top_candidates, tuned_fusion)
from retrieval.language import detect_language
from retrieval.lexical import BM25Index
from retrieval.query import clean_query
from retrieval.types import Chunk, ChunkKind, Embedder, SearchHit, Vector

log = logging.getLogger(__name__)


# The dense dot product is memory-bound: one BLAS thread is as fast, and a multi-threaded OpenBLAS pool left
# spinning after it starves torch's threads that embed the next query (measured at 20k chunks on 2 cores:
# p95 120 ms with both pools vs 13 ms). Set to False before the first search to leave BLAS alone.
SINGLE_THREADED_BLAS = True


@lru_cache(maxsize=1)
def _limit_blas_threads() -> None:
    """Once per process: numpy's BLAS runs on one thread (see ``SINGLE_THREADED_BLAS``)."""
    if not SINGLE_THREADED_BLAS:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency; without it BLAS keeps its threads
        return
    threadpool_limits(limits=1, user_api="blas")
    log.info("numpy BLAS limited to one thread for search")


def dense_scores(matrix: Vector, query_vector: Vector) -> Vector:
    """Cosine of every passage vector with the query vector (both normalised)."""
    _limit_blas_threads()
    return np.asarray(matrix @ query_vector, dtype=np.float32)


def index_text(chunk: Chunk) -> str:
    """The text that is indexed and embedded: title and heading path give a chunk its context."""
    context = " › ".join((chunk.document_title, *chunk.heading_path))
    return f"{context}\n{chunk.text}" if context else chunk.text


class HybridIndex:
    """One course's chunks, searchable lexically, densely or both (the mode is in ``FusionConfig``)."""

    def __init__(self, embedder: Embedder | None = None, config: FusionConfig | None = None,
                 reranker: Any = None) -> None:
        """An index without an embedder is lexical only; a reranker (see ``rerank``) reorders the top hits.

        Without ``config`` the fusion uses the settings tuned for the embedder's model (``fusion.TUNED``).
        """
        self.embedder = embedder
        self.reranker = reranker
        self.model_id = embedder.model_id if embedder is not None else None
        self.config = config or tuned_fusion(self.model_id)
        self._chunks: list[Chunk] = []
        self._ids: set[str] = set()
        self._matrix: Vector = np.zeros((0, 0), dtype=np.float32)
        self._lexical = BM25Index()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        """Number of chunks."""
        return len(self._chunks)

    @property
    def chunks(self) -> list[Chunk]:
        """The indexed chunks in insertion order (a copy)."""
        return list(self._chunks)

    def add(self, chunks: Sequence[Chunk], vectors: Vector | None = None) -> None:
        """Add chunks; vectors must come from this index's embedder (embedded here when not given)."""
        new = [c for c in chunks if c.chunk_id not in self._ids]
        if vectors is not None and len(new) != len(chunks):
            keep = [i for i, c in enumerate(chunks) if c.chunk_id not in self._ids]
            vectors = vectors[keep]
        if not new:
            return
        if self.embedder is not None:
            if vectors is None:
                vectors = self.embedder.embed_passages([index_text(c) for c in new])
            if vectors.shape[0] != len(new):
                raise ValueError("one vector per chunk is required")
        with self._lock:
            if self.embedder is not None and vectors is not None:
                vectors = np.ascontiguousarray(vectors, dtype=np.float32)
                self._matrix = vectors if self._matrix.size == 0 else np.vstack([self._matrix, vectors])
            self._chunks.extend(new)
            self._ids.update(c.chunk_id for c in new)
            self._lexical.extend([index_text(c) for c in new], [c.language for c in new])

    def remove_document(self, document_id: str) -> None:
        """Remove every chunk of one document."""
        with self._lock:
            mask = np.array([c.document_id != document_id for c in self._chunks], dtype=bool)
            if mask.all():
                return
            self._chunks = [c for c, m in zip(self._chunks, mask) if m]
            self._ids = {c.chunk_id for c in self._chunks}
            if self._matrix.size:
                self._matrix = self._matrix[mask]
            self._lexical.keep(mask)

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """Return up to ``k`` hits, best first, with a calibrated score in [0, 1]."""
        with self._lock:
            return self._search(query, k)

    def _search(self, query: str, k: int) -> list[SearchHit]:
        """Score every chunk per component, fuse the candidates, calibrate, optionally rerank."""
        n = len(self._chunks)
        config = self.config
        if config.clean_query:
            query = clean_query(query)
        if n == 0 or not query.strip():
            return []
        self._lexical.typos = config.typo_tolerance
        self._lexical.unknown_weight = config.unknown_word_weight
        use_dense = config.mode != "bm25" and self.embedder is not None and self._matrix.size > 0
        use_lexical = config.mode != "dense" or not use_dense
        bm25 = self._lexical.scores(query) if use_lexical else np.zeros(n, dtype=np.float32)
        if use_dense:
            assert self.embedder is not None
            qvec = self.embedder.embed_queries([query])[0]
            dense = dense_scores(self._matrix, qvec)
        else:
            dense = np.zeros(n, dtype=np.float32)
        effective = config if use_dense else _lexical_only(config)
        pool = candidate_pool(config, k, fused=use_dense and use_lexical)
        rows = np.union1d(top_candidates(bm25, pool) if use_lexical else [],
                          top_candidates(dense, pool) if use_dense else []).astype(np.int64)
        query_language = detect_language(query)
        languages = getattr(self.embedder, "languages", None)
        w_dense = dense_weight_for(config, query_language, languages) if use_dense and use_lexical else (
            1.0 if use_dense else 0.0)
        fused = fuse(bm25, dense, rows, effective, w_dense)
        if config.faq_boost:
            is_faq = np.array([self._chunks[r].kind == ChunkKind.FAQ for r in rows], dtype=bool)
            fused = np.where(is_faq, fused + config.faq_boost * np.abs(fused).max(initial=0.0), fused)
        order = rows[np.argsort(-fused, kind="stable")]
        fused_by_row = dict(zip(rows.tolist(), fused.tolist()))
        top = order[: max(k, getattr(self.reranker, "candidates", 0) if self.reranker else 0)]
        return self._hits(query, top, k, bm25, dense, fused_by_row, w_dense, use_dense, use_lexical)

    def _hits(self, query: str, top: Any, k: int, bm25: Any, dense: Any, fused_by_row: dict[int, float],
              w_dense: float, use_dense: bool, use_lexical: bool) -> list[SearchHit]:
        """Build hits; the calibrated score is the top hit's absolute relevance times relative fusion."""
        if len(top) == 0:
            return []
        rows = [int(r) for r in top]
        coverage = self._lexical.coverage(query, rows) if use_lexical else [0.0] * len(rows)
        bmax = float(bm25.max(initial=0.0)) or 1.0
        absolute = []
        w_score = score_weight(self.config, w_dense) if use_dense and use_lexical else w_dense
        for i, r in enumerate(rows):
            dense_abs = calibrate_dense(float(dense[r]), self.config) if use_dense else 0.0
            absolute.append((1 - w_score) * coverage[i] + w_score * dense_abs)
        rerank_scores: list[float] | None = None
        if self.reranker is not None:
            rerank_scores = self.reranker.score(query, [index_text(self._chunks[r]) for r in rows])
            order = sorted(range(len(rows)), key=lambda i: -rerank_scores[i])  # type: ignore[index]
            rows = [rows[i] for i in order]
            coverage = [coverage[i] for i in order]
            absolute = [absolute[i] for i in order]
            rerank_scores = [rerank_scores[i] for i in order]
        rows = rows[:k]
        top_fused = fused_by_row[rows[0]]
        confidence = absolute[0] if rerank_scores is None else rerank_scores[0]
        hits = []
        previous = 1.0
        for rank, r in enumerate(rows, start=1):
            if rerank_scores is not None:
                score = rerank_scores[rank - 1]
            else:
                score = confidence * _relative(fused_by_row[r], top_fused)
            score = float(min(previous, max(0.0, min(1.0, score))))  # monotone in rank, within [0, 1]
            previous = score
            components = {"fused": float(fused_by_row[r])}
            if use_lexical:
                components["bm25"] = float(bm25[r]) / bmax
                components["bm25_raw"] = float(bm25[r])
                components["coverage"] = float(coverage[rank - 1])
            if use_dense:
                components["dense"] = float(dense[r])
            if rerank_scores is not None:
                components["rerank"] = float(rerank_scores[rank - 1])
            hits.append(SearchHit(chunk=self._chunks[r], score=score, components=components, rank=rank))
        return hits


def _relative(fused: float, top: float) -> float:
    """A hit's fused score relative to the top hit's, in [0, 1].

    Per-query scaling maps a single candidate (or candidates that all score alike) to zero; they then stand
    level with the top hit instead of dividing zero by zero, so a course with one passage can still answer.
    """
    if top > 1e-9:
        return max(fused, 0.0) / top
    return 1.0 if fused >= top - 1e-9 else 0.0


def _lexical_only(config: FusionConfig) -> FusionConfig:
    """The same settings with the mode forced to BM25 (no embedder or no vectors yet)."""
    from dataclasses import replace

    return replace(config, mode="bm25")
