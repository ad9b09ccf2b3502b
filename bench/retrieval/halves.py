"""Development sets split in two halves: one to choose weights, thresholds and rules on, one to report on.

Multi-course sets (squad_en_dev: 48 articles) are split by ``course_id``; a one-course set (de_lecture_ki) by
each query's gold document, so questions about one lecture stay on one side. The split is a hash: the same
every run, independent of file order. Indexes are built with embeddings cached on disk (``CachedEmbedder``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
import numpy as np
from common import SHARED_EVAL, CachedEmbedder, held_back

from retrieval.chunking import ChunkingConfig
from retrieval.evaluate import BeirSet, build_indexes, load_beir
from retrieval.fusion import FusionConfig, candidate_pool, fuse, top_candidates
from retrieval.metrics import mrr_at, recall_at
from retrieval.query import clean_query
from retrieval.search import HybridIndex
from retrieval.types import Embedder

SETS = {"squad_en_dev": "en", "de_lecture_ki": "de"}


@dataclass
class DevSet:
    """One development set with its course indexes and every judged query's half."""

    name: str
    language: str
    data: BeirSet
    indexes: dict[str, HybridIndex]
    held: dict[str, bool]  # query id -> in the held-back (reported) half

    def queries(self, held: bool | None = None) -> list[dict[str, str]]:
        """Judged queries, optionally only one half."""
        return [q for qid, q in self.data.queries.items()
                if qid in self.data.qrels and (held is None or self.held[qid] == held)]

    def course_held(self, course_id: str) -> bool:
        """Whether a course belongs to the held-back half (one-course sets: always both, so True)."""
        return held_back(course_id) if len(self.indexes) > 1 else True


def split_key(data: BeirSet, query_id: str, courses: int) -> str:
    """What a query's half is decided by: its course, or in a one-course set its (first) gold document."""
    if courses > 1:
        return data.queries[query_id].get("course_id") or "default"
    return sorted(data.qrels[query_id])[0]


def limit_courses(data: BeirSet, courses: int) -> BeirSet:
    """At most ``courses`` courses, half from each half (the first by hash): a cheaper run on a busy machine."""
    names = sorted({d.get("course_id") or "default" for d in data.corpus.values()},
                   key=lambda c: hashlib.sha1(c.encode("utf-8")).hexdigest())
    if len(names) <= courses:
        return data
    keep = {c for half in (True, False) for c in [c for c in names if held_back(c) == half][:courses // 2]}
    corpus = {i: d for i, d in data.corpus.items() if (d.get("course_id") or "default") in keep}
    queries = {i: q for i, q in data.queries.items() if (q.get("course_id") or "default") in keep}
    return BeirSet(corpus, queries, {i: r for i, r in data.qrels.items() if i in queries})


def load_set(name: str, embedder: Embedder | None, root: Path | None = None, courses: int = 0) -> DevSet:
    """Read a set (``courses``: at most that many, 0 for all) and build one index per course (cached embeddings)."""
    data = load_beir((root or SHARED_EVAL / "retrieval") / name)
    if courses:
        data = limit_courses(data, courses)
    cached = CachedEmbedder(embedder) if embedder is not None else None
    indexes, _ = build_indexes(data, cached, ChunkingConfig(), FusionConfig())
    courses = len(indexes)
    held = {qid: held_back(split_key(data, qid, courses)) for qid in data.qrels if qid in data.queries}
    return DevSet(name, SETS.get(name, "en"), data, indexes, held)


@dataclass
class Scored:
    """One query's component scores over its course, for evaluating many fusion settings cheaply."""

    bm25: np.ndarray
    dense: np.ndarray
    docs: list[str]
    qrels: dict[str, int]


def score_queries(dev: DevSet, held: bool) -> list[Scored]:
    """BM25 and dense scores of every query of one half over its own course."""
    rows = []
    for q in dev.queries(held):
        index = dev.indexes[q.get("course_id") or "default"]
        assert index.embedder is not None
        text = clean_query(q["text"])  # as HybridIndex.search does by default
        bm25 = index._lexical.scores(text)
        dense = index._matrix @ index.embedder.embed_queries([text])[0]
        rows.append(Scored(bm25, dense, [c.document_id for c in index.chunks], dev.data.qrels[q["_id"]]))
    return rows


def fusion_metrics(rows: list[Scored], config: FusionConfig) -> dict[str, float]:
    """R@1, R@5, MRR@10 (document level) of one fusion setting over precomputed scores."""
    per_query = fusion_per_query(rows, config)
    return {k: round(float(np.mean([q[k] for q in per_query])) if per_query else 0.0, 4)
            for k in ("R@1", "R@5", "MRR@10")}


def paired_difference(rows: list[Scored], a: FusionConfig, b: FusionConfig, seed: int = 0) -> str:
    """MRR@10 of ``a`` minus ``b`` over the same queries: mean, 95 % bootstrap interval, queries better/worse."""
    diff = np.array([x["MRR@10"] - y["MRR@10"] for x, y in zip(fusion_per_query(rows, a), fusion_per_query(rows, b))])
    if not diff.size:
        return "–"
    rng = np.random.default_rng(seed)
    means = [diff[rng.integers(0, diff.size, diff.size)].mean() for _ in range(2000)]
    low, high = np.quantile(means, [0.025, 0.975])
    return (f"{100 * diff.mean():+.2f} points [{100 * low:+.2f}, {100 * high:+.2f}], better on "
            f"{int((diff > 0).sum())}, worse on {int((diff < 0).sum())} of {diff.size} queries")


def fusion_per_query(rows: list[Scored], config: FusionConfig) -> list[dict[str, float]]:
    """R@1, R@5 and MRR@10 of every query under one fusion setting."""
    result = []
    for row in rows:
        pool = candidate_pool(config, 100, fused=config.mode == "hybrid")  # as HybridIndex at eval depth 100
        cand = np.union1d(top_candidates(row.bm25, pool), top_candidates(row.dense, pool)).astype(np.int64)
        fused = fuse(row.bm25, row.dense, cand, config, config.dense_weight if config.mode == "hybrid" else 1.0)
        ranking: list[str] = []
        for r in cand[np.argsort(-fused, kind="stable")]:
            if row.docs[r] not in ranking:
                ranking.append(row.docs[r])
            if len(ranking) == 10:
                break
        result.append({"R@1": recall_at(ranking, row.qrels, 1), "R@5": recall_at(ranking, row.qrels, 5),
                       "MRR@10": mrr_at(ranking, row.qrels, 10)})
    return result


def describe(config: FusionConfig) -> str:
    """A fusion setting in a few words."""
    if config.mode != "hybrid":
        return config.mode
    if config.method == "rrf":
        return f"RRF k={config.rrf_k}"
    if config.method == "wrrf":
        return f"weighted RRF w={config.dense_weight} k={config.rrf_k}"
    extra = f", RRF share {config.rrf_share}" if getattr(config, "rrf_share", 0) else ""
    return f"{config.method} w={config.dense_weight} N={config.candidates}{extra}"


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown rows: setting, then R@1 / R@5 / MRR@10 per set."""
    names = list(next(iter(results.values())))
    lines = ["| fusion | " + " | ".join(f"{n} R@1 / R@5 / MRR@10" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for label, per_set in results.items():
        cells = [f"{m['R@1']:.3f} / {m['R@5']:.3f} / {m['MRR@10']:.3f}" for m in per_set.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
