"""Score fusion of lexical and dense results: per-query normalised, language-aware weighting, RRF as baseline."""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from retrieval.sentences import split_sentences
from retrieval.types import Embedder, Vector

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FusionConfig:
    """How the two rankings become one; the defaults were chosen on squad_en_dev only (see docs/RETRIEVAL.md)."""

    mode: str = "hybrid"  # "hybrid", "bm25" or "dense"
    method: str = "weighted"  # "weighted" (score level), "rrf" (rank level) or "wrrf" (RRF with dense_weight)
    dense_weight: float = 0.5  # share of the dense score when the embedder covers the query's language
    foreign_dense_factor: float = 1.0  # dense weight multiplier for languages the embedder lacks (0.5 measured worse)
    candidates: int = 20  # top-N of each component that normalisation and fusion look at
    rrf_k: int = 60
    rrf_share: float = 0.0  # "weighted" only: this share of the fused score is the (scaled) RRF score
    faq_boost: float = 0.1  # relative boost for teacher-written FAQ chunks
    dense_floor: float = 0.15  # cosine at or below which a passage counts as unrelated (calibration)
    dense_ceiling: float = 0.65  # cosine at or above which a passage counts as clearly related
    calibration_weight: float | None = None  # dense share of the calibrated ("covered") score; None: dense_weight
    clean_query: bool = True  # drop placeholders, greetings and preamble sentences before searching (query.py)
    typo_tolerance: bool = True  # an unknown query word matches the known word one edit away (lexical)
    unknown_word_weight: float = 1.0  # IDF share a word the course never uses takes in the coverage score

    def describe(self) -> dict[str, Any]:
        """The settings as plain values for reports."""
        return asdict(self)


# Fusion and calibration differ per embedding model (a stronger model earns more weight; cosine scales differ:
# e5's unrelated passages still score about 0.77). Chosen on squad_en_dev only with bench/retrieval/tune_fusion.py
# (weight, candidates) and calibration.py (floor, ceiling); keyed by the model's name without path or engine.
# Issue 13: the ranking (dense weight, candidates, RRF share) was chosen again on the tuning half of both sets
# (bench/retrieval/tune_fusion.py); the "covered" score keeps the weight its floor and ceiling were measured with.
TUNED: dict[str, dict[str, Any]] = {
    "all-MiniLM-L6-v2": {"dense_weight": 0.3, "candidates": 100, "rrf_share": 0.25, "calibration_weight": 0.5,
                         "dense_floor": 0.15, "dense_ceiling": 0.65},
    "multilingual-e5-small": {"dense_weight": 0.7, "candidates": 100, "calibration_weight": 0.6,
                              "dense_floor": 0.77, "dense_ceiling": 0.88},
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
    return replace(base, **tuned)


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
    if config.method in ("rrf", "wrrf"):
        weight = dense_weight if config.method == "wrrf" else 0.5
        return rrf(b, d, config.rrf_k, weight)
    nb = minmax(b) if b.max(initial=0.0) > 0 else np.zeros_like(b)
    nd = minmax(d)
    weighted = ((1.0 - dense_weight) * nb + dense_weight * nd).astype(np.float32)
    if config.rrf_share <= 0:
        return weighted
    # Ranks temper one component's outlier scores, which min-max passes on; scaled so the best possible is 1.
    ranked = rrf(b, d, config.rrf_k, 0.5) * ((config.rrf_k + 1) / 2.0)
    return ((1.0 - config.rrf_share) * weighted + config.rrf_share * ranked).astype(np.float32)


def rrf(bm25: FloatArray, dense: FloatArray, k: int, dense_weight: float = 0.5) -> FloatArray:
    """Reciprocal-rank fusion of two score vectors; ``dense_weight`` 0.5 is plain RRF (both ranks count alike)."""
    weights = 2.0 * (1.0 - dense_weight), 2.0 * dense_weight
    return (weights[0] / (k + _ranks(bm25)) + weights[1] / (k + _ranks(dense))).astype(np.float32)


def _ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, best first."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[order] = np.arange(1, len(values) + 1, dtype=np.float32)
    return ranks


def score_weight(config: FusionConfig, fusion_weight: float) -> float:
    """Dense share of the calibrated score: ``calibration_weight`` when set, else the fusion's dense weight."""
    return fusion_weight if config.calibration_weight is None else config.calibration_weight


def calibrate_dense(cosine: float, config: FusionConfig) -> float:
    """Map a cosine similarity onto [0, 1] between "unrelated" and "clearly related"."""
    span = max(config.dense_ceiling - config.dense_floor, 1e-6)
    return float(min(1.0, max(0.0, (cosine - config.dense_floor) / span)))


AUTO_FLOOR_QUANTILE = 0.5  # of the best cosine a sentence reaches among one other course's passages
AUTO_CEILING_QUANTILE = 0.8  # of the cosine between a sentence and the rest of its own passage


def calibration_samples(embedder: Embedder, passages: Sequence[str], groups: Sequence[str] | None = None, *,
                        vectors: Vector | None = None, samples: int = 300, pool: int = 3000,
                        seed: int = 0) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(related, unrelated) cosines from unlabelled passages: see ``auto_calibrate``; empty when too little text."""
    groups = list(groups) if groups is not None else [str(i) for i in range(len(passages))]
    rng = random.Random(seed)
    order = list(range(len(passages)))
    rng.shuffle(order)
    queries, rests, owners = [], [], []
    for i in order:
        sentences = [s for s in split_sentences(passages[i]) if 5 <= len(s.split()) <= 40]
        if len(sentences) < 2:
            continue
        cut = sentences[rng.randrange(len(sentences))]
        queries.append(cut)
        rests.append(passages[i].replace(cut, " "))
        owners.append(groups[i])
        if len(queries) == samples:
            break
    pool_rows = order[:pool]
    empty = np.zeros(0, dtype=np.float32)
    if len(queries) < 10 or len(set(groups[i] for i in pool_rows)) < 2:
        return empty, empty
    q = embedder.embed_queries(queries)
    related = np.sum(q * embedder.embed_passages(rests), axis=1)
    matrix = vectors[pool_rows] if vectors is not None else embedder.embed_passages([passages[i] for i in pool_rows])
    # "Unrelated" is the best a sentence scores in one other course: what an off-topic question meets.
    pool_groups = [groups[j] for j in pool_rows]
    names = sorted(set(pool_groups))
    others = [rng.choice([g for g in names if g != owner] or names) for owner in owners]
    foreign = np.array([[g == other != owner for g in pool_groups] for owner, other in zip(owners, others)], dtype=bool)
    unrelated = np.where(foreign, q @ matrix.T, -np.inf).max(axis=1)
    return related.astype(np.float32), unrelated[np.isfinite(unrelated)].astype(np.float32)


def auto_calibrate(embedder: Embedder, passages: Sequence[str], groups: Sequence[str] | None = None, *,
                   vectors: Vector | None = None, samples: int = 300, pool: int = 3000, seed: int = 0,
                   base: FusionConfig | None = None) -> FusionConfig:
    """Fusion settings for an embedding model without a tuned entry, from unlabelled passages of the installation.

    One sentence is cut out of each sampled passage and asked as a query. Its cosine with the rest of its own
    passage is what "clearly related" looks like to this model; its best cosine among the passages of one other
    group (another course, drawn at random; ``groups`` gives each passage's course) is what "unrelated" looks
    like: the best an off-topic question meets in a course. The dense
    floor and ceiling are quantiles of those two distributions (``AUTO_*_QUANTILE``, chosen so the procedure
    reproduces the tuned values of the two tuned models on squad_en_dev); dense weight and candidates stay the
    ``base`` defaults. ``vectors`` are the passages' stored vectors (saves embedding the pool again). With too
    little text (fewer than 10 passages of two sentences, or one group only) ``base`` is returned unchanged.
    """
    base = base or FusionConfig()
    related, unrelated = calibration_samples(embedder, passages, groups, vectors=vectors, samples=samples,
                                             pool=pool, seed=seed)
    if not related.size or not unrelated.size:
        return base
    floor = float(np.quantile(unrelated, AUTO_FLOOR_QUANTILE))
    ceiling = max(float(np.quantile(related, AUTO_CEILING_QUANTILE)), floor + 0.02)  # never an empty span
    return replace(base, dense_floor=round(floor, 3), dense_ceiling=round(ceiling, 3))
