"""Optional reranking reorders the top hits and reports the reranker's score."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from retrieval.embedders import HashingEmbedder
from retrieval.rerank import CrossEncoderReranker
from retrieval.search import HybridIndex
from retrieval.types import Chunk

TEXTS = {"a": "sorting an array with a pivot", "b": "light energy of a plant", "c": "search in an array"}


def _index(reranker: object) -> HybridIndex:
    index = HybridIndex(HashingEmbedder(), reranker=reranker)
    index.add([Chunk(chunk_id=k, document_id=k, document_title=k, text=t, language="en") for k, t in TEXTS.items()])
    return index


class _PrefersPlants:
    """A stand-in reranker: anything about plants wins."""

    candidates = 10

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        return [0.9 if "plant" in p else 0.2 for p in passages]


def test_reranker_decides_the_order() -> None:
    hits = _index(_PrefersPlants()).search("array sorting", 3)
    assert hits[0].chunk.document_id == "b"
    assert hits[0].score == 0.9 and hits[0].components["rerank"] == 0.9
    assert [h.rank for h in hits] == [1, 2, 3]


def test_cross_encoder_loads_locally_and_scores_in_unit_interval(tiny_cross_encoder_dir: Path) -> None:
    reranker = CrossEncoderReranker(str(tiny_cross_encoder_dir), candidates=3)
    scores = reranker.score("array search", list(TEXTS.values()))
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)
    hits = _index(reranker).search("array search", 3)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert reranker.score("q", []) == []
