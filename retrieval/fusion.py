"""Score fusion of lexical and dense results: per-query normalised, language-aware weighting, RRF as baseline."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FusionConfig:
    """How the two rankings become one; the defaults were chosen on squad_en_dev only (see docs/RETRIEVAL.md)."""

    mode: str = "hybrid"  # "hybrid", "bm25" or "dense"
    method: str = "weighted"  # "weighted" (score level) or "rrf" (rank level)
    dense_weight: float = 0.5  # share of the dense score when the embedder covers the query's language
    foreign_dense_factor: float = 1.0  # dense weight multiplier for languages the embedder lacks (0.5 measured worse)
    candidates: int = 20  # top-N of each component that normalisation and fusion look at
    rrf_k: int = 60
    faq_boost: float = 0.1  # relative boost for teacher-written FAQ chunks
    dense_floor: float = 0.15  # cosine at or below which a passage counts as unrelated (calibration)
    dense_ceiling: float = 0.65  # cosine at or above which a passage counts as clearly related

    def describe(self) -> dict[str, Any]:
        """The settings as plain values for reports."""
        return asdict(self)


# Fusion and calibration differ per embedding model (a stronger model earns more weight; cosine scales differ:
# e5's unrelated passages still score about 0.77). Chosen on squad_en_dev only with bench/retrieval/tune_fusion.py
# (weight, candidates) and calibration.py (floor, ceiling); keyed by the model's name without path or engine.
TUNED: dict[str, dict[str, float]] = {
    "all-MiniLM-L6-v2": {"dense_weight": 0.5, "candidates": 20, "dense_floor": 0.15, "dense_ceiling": 0.65},
    "multilingual-e5-small": {"dense_weight": 0.6, "candidates": 50, "dense_floor": 0.77, "dense_ceiling": 0.88},
}


def model_key(model_id: str | None) -> str:
    """A model id without its path, prefixes or engine suffix: ``/m/intfloat/multilingual-e5-small|…`` -> name."""
    return (model_id or "").split("|", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def tuned_fusion(model_id: str | None, base: FusionConfig | None = None) -> FusionConfig:
    """``base`` (default settings) with the weights and calibration measured for this embedding model, if any."""
    base = base or FusionConfig()
    tuned = TUNED.get(model_key(model_id))
    if not tuned:
        return base
    return replace(base, dense_weight=float(tuned["dense_weight"]), candidates=int(tuned["candidates"]),
                   dense_floor=float(tuned["dense_floor"]), dense_ceiling=float(tuned["dense_ceiling"]))


def candidate_pool(config: FusionConfig, k: int, fused: bool) -> int:
    """Top chunks per component to consider: ``config.candidates`` when fusing, never fewer than ``k`` otherwise."""
    # Fusion normalises over each component's top candidates; a single component only ranks.
    return config.candidates if fused else max(config.candidates, k)


def top_candidates(scores: FloatArray, n: int) -> npt.NDArray[np.int64]:
    """Indices of the ``n`` highest scores (unordered), without sorting the whole array."""
    if len(scores) <= n:
        return np.arange(len(scores))
    return np.argpartition(-scores, n - 1)[:n].astype(np.int64)


def minmax(values: FloatArray) -> FloatArray:
    """Scale to [0, 1] within this query's candidates (constant input maps to zeros)."""
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-9:
        return np.zeros_like(values)
    return ((values - low) / (high - low)).astype(np.float32)


def dense_weight_for(config: FusionConfig, query_language: str | None,
                     embedder_languages: tuple[str, ...] | None) -> float:
    """Trust dense scores less when the embedding model was not trained on the query's language."""
    weight = config.dense_weight
    if embedder_languages is not None and query_language is not None \
            and query_language not in embedder_languages:
        weight *= config.foreign_dense_factor
    return weight


def fuse(bm25: FloatArray, dense: FloatArray, rows: npt.NDArray[np.int64], config: FusionConfig,
         dense_weight: float) -> FloatArray:
    """Fused relevance of the candidate ``rows`` (higher is better); inputs are full score vectors."""
    b, d = bm25[rows], dense[rows]
    if config.mode == "bm25":
        return minmax(b) if b.max(initial=0.0) > 0 else b
    if config.mode == "dense":
        return d
    if config.method == "rrf":
        rank_b = _ranks(b)
        rank_d = _ranks(d)
        return (1.0 / (config.rrf_k + rank_b) + 1.0 / (config.rrf_k + rank_d)).astype(np.float32)
    nb = minmax(b) if b.max(initial=0.0) > 0 else np.zeros_like(b)
    nd = minmax(d)
    return ((1.0 - dense_weight) * nb + dense_weight * nd).astype(np.float32)


def _ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, best first."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(1, len(values) + 1, dtype=np.float32)
    return ranks


def calibrate_dense(cosine: float, config: FusionConfig) -> float:
    """Map a cosine similarity onto [0, 1] between "unrelated" and "clearly related"."""
    span = max(config.dense_ceiling - config.dense_floor, 1e-6)
    return float(min(1.0, max(0.0, (cosine - config.dense_floor) / span)))
