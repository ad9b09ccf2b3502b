"""Text extraction quality: token-level F1 of our PDF text against the slides' markdown sources.

Normalisation (both sides): HTML entities decoded, lower case, tokens = runs of letters/digits (Unicode),
multiset overlap. Source side: front matter, HTML tags, Markdown markup, code-fence markers, reveal.js slide
separators (">>>", "---") and speaker notes ("Note:" to the end of the slide) removed.
Usage: python bench/retrieval/extraction_f1.py [DE_OOP_SLIDES_DIR]
"""
from __future__ import annotations

import argparse
import html
import re
from collections import Counter
from pathlib import Path

from common import SHARED_EVAL, quiet

from retrieval.loaders import load_document
from retrieval.loaders.markup import split_front_matter, strip_inline_markdown

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_TAG = re.compile(r"<[^>]+>")
_FENCE = re.compile(r"^\s*(```+|~~~+).*$", re.MULTILINE)
_SEPARATOR = re.compile(r"^\s*(>>>|---|\*\*\*)\s*$", re.MULTILINE)


def source_text(markdown: str) -> str:
    """What a reader sees on the rendered slides (speaker notes excluded)."""
    body, _ = split_front_matter(markdown)
    slides = re.split(r"^\s*>>>\s*$", body, flags=re.MULTILINE)
    kept = [re.split(r"^\s*Notes?:", slide, flags=re.MULTILINE)[0] for slide in slides]
    text = "\n".join(kept)
    text = _FENCE.sub("", text)
    text = _SEPARATOR.sub("", text)
    text = re.sub(r"^#{1,6}\s*", "", text, flags=re.MULTILINE)
    text = strip_inline_markdown(_TAG.sub(" ", text))
    return html.unescape(text)


def tokens(text: str) -> Counter[str]:
    """Lower-cased letter/digit tokens as a multiset."""
    return Counter(_TOKEN.findall(html.unescape(text).lower()))


def f1(predicted: Counter[str], reference: Counter[str]) -> tuple[float, float, float]:
    """Precision, recall and F1 of the multiset overlap."""
    overlap = sum((predicted & reference).values())
    p = overlap / max(sum(predicted.values()), 1)
    r = overlap / max(sum(reference.values()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    """Print per-deck and overall (micro-averaged) precision, recall and F1."""
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default=str(SHARED_EVAL / "ingestion" / "de_oop_slides"))
    args = parser.parse_args()
    quiet()
    root = Path(args.root)
    total_pred: Counter[str] = Counter()
    total_ref: Counter[str] = Counter()
    print("| deck | pages | precision | recall | F1 |\n|---|---|---|---|---|")
    for pdf in sorted((root / "pdfs").glob("*.pdf")):
        source = root / "slides" / (pdf.stem + ".md")
        if not source.exists():
            continue
        document = load_document(pdf.read_bytes(), pdf.name)
        predicted = tokens(document.text)
        reference = tokens(source_text(source.read_text(encoding="utf-8")))
        total_pred += predicted
        total_ref += reference
        p, r, f = f1(predicted, reference)
        print(f"| {pdf.name} | {document.page_count} | {p:.3f} | {r:.3f} | {f:.3f} |")
    p, r, f = f1(total_pred, total_ref)
    print(f"| **all (micro)** | | {p:.3f} | {r:.3f} | **{f:.3f}** |")


if __name__ == "__main__":
    main()
