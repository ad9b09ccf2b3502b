"""Ranking metrics over document ids (a document's rank is the rank of its best chunk)."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from retrieval.types import Chunk, SearchHit


def document_ranking(hits: Sequence[SearchHit], limit: int = 10,
                     doc_of: Callable[[Chunk], str | None] | None = None) -> list[str]:
    """Document ids in the order of their best chunk, at most ``limit`` (``doc_of`` maps chunks; None skips)."""
    seen: list[str] = []
    for hit in hits:
        doc = hit.chunk.document_id if doc_of is None else doc_of(hit.chunk)
        if doc is not None and doc not in seen:
            seen.append(doc)
            if len(seen) == limit:
                break
    return seen


def recall_at(ranking: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """Share of the relevant documents found in the top ``k``."""
    positives = {d for d, g in relevant.items() if g > 0}
    if not positives:
        return 0.0
    return len(positives.intersection(ranking[:k])) / len(positives)


def mrr_at(ranking: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top ``k`` (0 if none)."""
    for i, doc in enumerate(ranking[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / i
    return 0.0


def ndcg_at(ranking: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain with graded relevance (BEIR's definition, linear gains)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 1) for i, doc in enumerate(ranking[:k], start=1))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """A latency percentile in milliseconds (0 for no samples)."""
    if not seconds:
        return 0.0
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))
