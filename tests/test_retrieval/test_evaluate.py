"""Metrics on a hand-checked toy set, and the evaluation's result keys that scripts rely on."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from retrieval.embedders import HashingEmbedder
from retrieval.evaluate import evaluate, first_rank, hit_figures, load_beir, score_queries
from retrieval.metrics import document_ranking, mrr_at, ndcg_at, percentile_ms, recall_at
from retrieval.types import Chunk, SearchHit

KEYS = {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "latency_ms_p50", "latency_ms_p95",
        "ingest_seconds", "model_load_seconds", "queries", "chunks", "config"}


def _hit(doc: str, rank: int) -> SearchHit:
    return SearchHit(chunk=Chunk(chunk_id=f"{doc}-{rank}", document_id=doc, document_title=doc, text=""),
                     score=1.0 / rank, rank=rank)


def test_document_rank_is_its_best_chunk() -> None:
    hits = [_hit("a", 1), _hit("a", 2), _hit("b", 3), _hit("c", 4), _hit("b", 5)]
    assert document_ranking(hits) == ["a", "b", "c"]


def test_metrics_by_hand() -> None:
    ranking = ["x", "rel1", "y", "rel2"]
    relevant = {"rel1": 1, "rel2": 1}
    assert recall_at(ranking, relevant, 1) == 0.0
    assert recall_at(ranking, relevant, 2) == 0.5
    assert recall_at(ranking, relevant, 5) == 1.0
    assert mrr_at(ranking, relevant) == 0.5
    # DCG = 1/log2(3) + 1/log2(5); ideal = 1/log2(2) + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(ranking, relevant) == pytest.approx(expected)
    assert mrr_at(["x"] * 10 + ["rel1"], relevant) == 0.0
    assert percentile_ms([0.001, 0.002, 0.003], 50) == pytest.approx(2.0)


def _beir(tmp_path: Path) -> Path:
    corpus = [
        {"_id": "c1/a.md", "title": "Sorting", "text": "# Quicksort\n\nQuicksort partitions around a pivot.",
         "course_id": "c1"},
        {"_id": "c1/b.md", "title": "Graphs", "text": "# BFS\n\nBreadth-first search uses a queue.",
         "course_id": "c1"},
        {"_id": "c2#p0", "title": "Cells", "text": "Mitochondria produce ATP.", "course_id": "c2"},
        {"_id": "c2#p1", "title": "Cells", "text": "Quicksort is not biology.", "course_id": "c2"},
    ]
    queries = [{"_id": "q1", "text": "Which sort uses a pivot?", "course_id": "c1"},
               {"_id": "q2", "text": "What produces ATP?", "course_id": "c2"},
               {"_id": "q3", "text": "queue based search", "course_id": "c1"}]
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tc1/a.md\t1\nq2\tc2#p0\t1\nq3\tc1/b.md\t1\n")
    return tmp_path


def test_evaluate_reports_the_contracted_keys(tmp_path: Path) -> None:
    directory = _beir(tmp_path)
    assert len(load_beir(directory).qrels) == 3
    result = evaluate(directory, HashingEmbedder())
    assert set(result) == KEYS
    assert result["queries"] == 3 and result["chunks"] == 4
    assert result["recall@1"] == 1.0 and result["mrr@10"] == 1.0
    assert result["config"]["embedder"] == "hashing-256"


def test_evaluate_components_side_by_side(tmp_path: Path) -> None:
    result = evaluate(_beir(tmp_path), HashingEmbedder(), modes=["bm25", "dense", "hybrid"])
    assert set(result["modes"]) == {"bm25", "dense", "hybrid"}
    for metrics in result["modes"].values():
        assert set(metrics) == KEYS
    assert result["modes"]["hybrid"]["mrr@10"] >= max(result["modes"]["bm25"]["mrr@10"],
                                                      result["modes"]["dense"]["mrr@10"])


def _page_hit(doc: str, page: int, rank: int) -> SearchHit:
    chunk = Chunk(chunk_id=f"{doc}-{page}-{rank}", document_id=doc, document_title=doc, text="", position=page,
                  position_end=page)
    return SearchHit(chunk=chunk, score=1.0 / rank, rank=rank)


def test_first_rank_counts_distinct_items_best_chunk_first() -> None:
    hits = [_page_hit("a", 1, 1), _page_hit("a", 1, 2), _page_hit("b", 4, 3), _page_hit("a", 4, 4)]
    assert first_rank(hits, lambda c: c.document_id == "b") == 2  # documents: a, b
    pages = lambda c: f"{c.document_id}#{c.position}"  # noqa: E731
    assert first_rank(hits, lambda c: c.document_id == "a" and c.position == 4, pages) == 3  # a#1, b#4, a#4
    assert first_rank(hits, lambda c: c.document_id == "a" and c.position == 4, pages, depth=2) is None
    assert first_rank(hits, lambda c: c.document_id == "z") is None
    assert first_rank(hits, lambda c: True, lambda c: None) is None  # every chunk skipped


def test_hit_figures_by_hand() -> None:
    figures = hit_figures([1, 3, None, 6])
    assert figures["questions"] == 4
    assert (figures["found@1"], figures["found@3"], figures["found@5"]) == (1, 2, 2)
    assert (figures["hit@1"], figures["hit@3"], figures["hit@5"]) == (0.25, 0.5, 0.5)
    assert figures["mrr"] == pytest.approx(round((1 + 1 / 3 + 1 / 6) / 4, 4))
    assert hit_figures([])["hit@1"] == 0.0


def test_score_queries_reports_hit_figures_from_the_shared_scoring(tmp_path: Path) -> None:
    data = load_beir(_beir(tmp_path))

    def search(course_id: str, text: str) -> list[SearchHit]:  # a fixed ranking: the relevant document second
        return [_hit("c1/b.md" if "pivot" in text else "c1/a.md", 1), _hit("c1/a.md" if "pivot" in text else "x", 2),
                _hit("c2#p0", 3)]

    result = score_queries(data, search)
    ranks = [2, 3, None]  # q1: c1/a.md second; q2: c2#p0 third; q3: c1/b.md never
    assert {k: result[f"hit@{k}"] for k in (1, 3, 5)} == {k: hit_figures(ranks)[f"hit@{k}"] for k in (1, 3, 5)}
