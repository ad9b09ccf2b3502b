"""BEIR-format evaluation through the product's pipeline: load text, chunk, embed, index, search."""
from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from retrieval.chunking import ChunkingConfig, chunk_document
from retrieval.errors import IngestError
from retrieval.fusion import FusionConfig, tuned_fusion
from retrieval.loaders import load_document
from retrieval.metrics import document_ranking, mrr_at, ndcg_at, percentile_ms, recall_at
from retrieval.search import HybridIndex, index_text
from retrieval.types import Chunk, Embedder, SearchHit

log = logging.getLogger(__name__)

MODES = ("bm25", "dense", "hybrid")
METRIC_KEYS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
HIT_KS = (1, 3, 5)  # "is the expected source among the first k": what the teacher's test questions report
SEARCH_DEPTH = 100  # hits fetched per query by every evaluation (the CLI and the teacher's test questions)

Searcher = Callable[[str, str], "Sequence[SearchHit] | None"]
"""(course id, query text) -> hits best first, or None when that course has no index."""


@dataclass
class BeirSet:
    """A BEIR directory in memory: corpus by id, queries by id, graded qrels."""

    corpus: dict[str, dict[str, str]]
    queries: dict[str, dict[str, str]]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)


def load_beir(directory: str | Path, split: str = "test") -> BeirSet:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""
    root = Path(directory)
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        corpus = {d["_id"]: d for d in map(json.loads, f) if d}
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        queries = {q["_id"]: q for q in map(json.loads, f) if q}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(root / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for line_no, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (line_no == 0 and not parts[2].lstrip("-").isdigit()):
                continue
            qrels[parts[0]][parts[1]] = int(parts[2])
    return BeirSet(corpus=corpus, queries=queries, qrels=dict(qrels))


def filename_for(doc_id: str) -> str:
    """Corpus ids that look like file names keep their type (".md"); others are plain text."""
    tail = doc_id.rsplit("/", 1)[-1]
    return tail if "." in tail.rsplit("#", 1)[-1] else f"{tail}.txt"


def build_indexes(data: BeirSet, embedder: Embedder | None, chunking: ChunkingConfig,
                  fusion: FusionConfig) -> tuple[dict[str, HybridIndex], dict[str, float]]:
    """Ingest every course's documents into its own index; returns the indexes and timings."""
    by_course: dict[str, list[dict[str, str]]] = defaultdict(list)
    for doc in data.corpus.values():
        by_course[doc.get("course_id") or "default"].append(doc)
    timings = {"parse_chunk_seconds": 0.0, "embed_seconds": 0.0, "index_seconds": 0.0, "failed": 0.0}
    indexes: dict[str, HybridIndex] = {}
    for course_id, docs in by_course.items():
        started = time.perf_counter()
        chunks: list[Chunk] = []
        for doc in docs:
            try:
                loaded = load_document(doc["text"].encode("utf-8"), filename_for(doc["_id"]),
                                       document_id=doc["_id"])
            except IngestError as exc:
                log.warning("document %s not ingested: %s", doc["_id"], exc.code)
                timings["failed"] += 1
                continue
            loaded = replace(loaded, title=doc.get("title") or loaded.title)
            chunks.extend(chunk_document(loaded, chunking))
        timings["parse_chunk_seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        vectors = embedder.embed_passages([index_text(c) for c in chunks]) if embedder is not None else None
        timings["embed_seconds"] += time.perf_counter() - started
        started = time.perf_counter()
        index = HybridIndex(embedder, fusion)
        index.add(chunks, vectors)
        index.search("warm up", 1)  # builds the lexical matrix, part of ingestion, not of query latency
        timings["index_seconds"] += time.perf_counter() - started
        indexes[course_id] = index
    return indexes, timings


def first_rank(hits: Sequence[SearchHit], is_expected: Callable[[Chunk], bool],
               item_of: Callable[[Chunk], str | None] | None = None, depth: int = 10) -> int | None:
    """1-based rank of the first expected item among a result list's distinct items, or None within ``depth``.

    An item is a document by default (``item_of`` maps a chunk to another key, e.g. a file and page; None skips the
    chunk); an item's rank is its best chunk's rank, as in :func:`retrieval.metrics.document_ranking`.
    """
    seen: set[str] = set()
    for hit in hits:
        item = hit.chunk.document_id if item_of is None else item_of(hit.chunk)
        if item is None or item in seen:
            continue
        seen.add(item)
        if is_expected(hit.chunk):
            return len(seen)
        if len(seen) >= depth:
            break
    return None


def hit_figures(ranks: Sequence[int | None], ks: Sequence[int] = HIT_KS) -> dict[str, Any]:
    """Per k, how many expected items were in the top k (``found@k``) and that share (``hit@k``); plus ``mrr``.

    The one scoring of the operator's ``retrieval eval`` and the teachers' test questions.
    """
    result: dict[str, Any] = {"questions": len(ranks)}
    for k in ks:
        found = sum(1 for rank in ranks if rank is not None and rank <= k)
        result[f"found@{k}"] = found
        result[f"hit@{k}"] = round(found / len(ranks), 4) if ranks else 0.0
    result["mrr"] = round(sum(1.0 / rank for rank in ranks if rank) / len(ranks), 4) if ranks else 0.0
    return result


def score_queries(data: BeirSet, search: Searcher,
                  doc_of: Callable[[Chunk], str | None] | None = None) -> dict[str, Any]:
    """Run every judged query through ``search``; averaged document-level metrics and latency percentiles.

    A document's rank is its best chunk's rank; ``doc_of`` maps a chunk to its BEIR document id (default: the
    chunk's ``document_id``), so the library and the product's pipeline are scored by the same code.
    """
    sums: dict[str, float] = defaultdict(float)
    latencies: list[float] = []
    ranks: list[int | None] = []
    count = 0
    for qid, query in data.queries.items():
        relevant = data.qrels.get(qid)
        if not relevant:
            continue
        started = time.perf_counter()
        hits = search(query.get("course_id") or "default", query["text"])
        if hits is None:
            continue
        latencies.append(time.perf_counter() - started)
        ranking = document_ranking(hits, 10, doc_of)
        for k in (1, 5, 10):
            sums[f"recall@{k}"] += recall_at(ranking, relevant, k)
        sums["mrr@10"] += mrr_at(ranking, relevant, 10)
        sums["ndcg@10"] += ndcg_at(ranking, relevant, 10)
        positives = {doc for doc, grade in relevant.items() if grade > 0}
        document = doc_of or (lambda chunk: chunk.document_id)
        ranks.append(first_rank(hits, lambda chunk: document(chunk) in positives, doc_of))
        count += 1
    result: dict[str, Any] = {name: round(sums[name] / max(count, 1), 4) for name in METRIC_KEYS}
    figures = hit_figures(ranks)
    result.update({f"hit@{k}": figures[f"hit@{k}"] for k in HIT_KS})
    result["latency_ms_p50"] = round(percentile_ms(latencies, 50), 2)
    result["latency_ms_p95"] = round(percentile_ms(latencies, 95), 2)
    result["queries"] = count
    return result


def run_queries(data: BeirSet, indexes: dict[str, HybridIndex], fusion: FusionConfig,
                depth: int = SEARCH_DEPTH) -> dict[str, Any]:
    """Search every query in its own course's index with the given fusion settings; return averaged metrics."""

    def search(course_id: str, text: str) -> list[SearchHit] | None:
        index = indexes.get(course_id)
        if index is None:
            return None
        index.config = fusion
        return index.search(text, k=depth)

    return score_queries(data, search)


def evaluate(directory: str | Path, embedder: Embedder | None = None, *,
             chunking: ChunkingConfig | None = None, fusion: FusionConfig | None = None,
             modes: Sequence[str] | None = None) -> dict[str, Any]:
    """Evaluate a BEIR directory; one result dict, or ``{"modes": {mode: result}}`` when several modes.

    Keys: ``recall@1/5/10``, ``mrr@10``, ``ndcg@10``, ``latency_ms_p50/p95``, ``ingest_seconds``,
    ``model_load_seconds``, ``queries``, ``chunks``, ``config``.
    """
    chunking = chunking or ChunkingConfig()
    fusion = fusion or tuned_fusion(embedder.model_id if embedder is not None else None)
    started = time.perf_counter()
    load_seconds = 0.0
    if embedder is not None and hasattr(embedder, "load"):
        embedder.load()
        load_seconds = time.perf_counter() - started
    data = load_beir(directory)
    started = time.perf_counter()
    indexes, timings = build_indexes(data, embedder, chunking, fusion)
    ingest_seconds = time.perf_counter() - started
    chunks = sum(len(ix) for ix in indexes.values())
    results: dict[str, Any] = {}
    for mode in modes or [fusion.mode]:
        config = replace(fusion, mode=mode)
        metrics = run_queries(data, indexes, config)
        ordered: dict[str, Any] = {key: metrics.get(key, 0.0) for key in
                                   ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10",
                                    "latency_ms_p50", "latency_ms_p95")}
        ordered.update({
            "ingest_seconds": round(ingest_seconds, 2), "model_load_seconds": round(load_seconds, 2),
            "queries": metrics["queries"], "chunks": chunks,
            "config": {"embedder": embedder.model_id if embedder is not None else None,
                       "fusion": config.describe(), "chunking": chunking.describe(),
                       "timings": {k: round(v, 2) for k, v in timings.items()}},
        })
        results[mode] = ordered
    if modes is None:
        return dict(results[fusion.mode])
    return {"modes": results}
