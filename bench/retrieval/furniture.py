"""Share of chunk words that are repeated page furniture (PDF decks) or slide markup (HTML decks).

PDF: a line is furniture when it recurs word for word on at least half of a deck's distinct pages (at least 3),
judged on the loader's own page text before clean-up; the figure is the share of the words of all chunks that
stand in such lines. HTML: the share of chunk words that are markup a student
never sees (remark class markup ``.pull-left[``, slide properties ``class:``, CSS declarations), and whether the
chunks carry slide numbers. Run it with ``PYTHONPATH`` pointing at an older checkout to compare.
Usage: python bench/retrieval/furniture.py DECK [DECK ...]
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from common import quiet

from retrieval.chunking import chunk_document
from retrieval.loaders import LoadLimits, load_document
from retrieval.loaders.cleanup import normalise_text
from retrieval.loaders.pdf import extract_pages

_MARKUP = re.compile(r"^\.[\w.-]+\[|^(class|name|layout|count|background-image):$|[{};]|^\]$|^#{1,6}$")


def furniture_lines(pages: list[str]) -> set[str]:
    """Lines (lower case) on at least half of the distinct pages, at least three."""
    distinct = list(dict.fromkeys(p for p in pages if p.strip()))
    counts: Counter[str] = Counter()
    for page in distinct:
        counts.update({line.strip().lower() for line in page.split("\n") if line.strip()})
    needed = max(3, (len(distinct) + 1) // 2)
    return {line for line, n in counts.items() if n >= needed}


def pdf_share(path: Path) -> tuple[int, int, int]:
    """(furniture words, all words, chunks) of one PDF's chunks."""
    raw, _ = extract_pages(path.read_bytes(), LoadLimits(ocr=False))
    furniture = furniture_lines([normalise_text(p) for p in raw])
    chunks = chunk_document(load_document(path.read_bytes(), path.name, limits=LoadLimits(ocr=False)))
    words = furniture_words = 0
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            count = len(line.split())
            words += count
            key = line.strip().lower()
            if key in furniture:
                furniture_words += count
    return furniture_words, words, len(chunks)


def html_share(path: Path) -> tuple[int, int, int, int]:
    """(markup words, all words, chunks, chunks with a slide number) of one HTML deck's chunks."""
    chunks = chunk_document(load_document(path.read_bytes(), path.name))
    tokens = [t for c in chunks for t in c.text.split()]
    markup = sum(1 for t in tokens if _MARKUP.search(t))
    return markup, len(tokens), len(chunks), sum(1 for c in chunks if c.position is not None)


def main() -> None:
    """Print one row per deck and the total."""
    parser = argparse.ArgumentParser()
    parser.add_argument("decks", nargs="+")
    args = parser.parse_args()
    quiet()
    total = [0, 0]
    print("| deck | chunks | with slide number | furniture or markup words | share |\n|---|---|---|---|---|")
    for name in args.decks:
        path = Path(name)
        if path.suffix.lower() == ".pdf":
            bad, words, chunks = pdf_share(path)
            numbered = chunks
        else:
            bad, words, chunks, numbered = html_share(path)
        total[0] += bad
        total[1] += words
        print(f"| {path.name} | {chunks} | {numbered} | {bad} / {words} | {bad / max(words, 1):.1%} |")
    print(f"| **all** | | | {total[0]} / {total[1]} | **{total[0] / max(total[1], 1):.1%}** |")


if __name__ == "__main__":
    main()
