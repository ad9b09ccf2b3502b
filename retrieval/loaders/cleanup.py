"""Text clean-up shared by the loaders: whitespace, hyphenation, headers and footers repeated on pages."""
from __future__ import annotations

import re
from collections import Counter

_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f]+")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_EDGE_LINES = 2  # headers and footers live in the first and last lines of a page


def normalise_text(text: str) -> str:
    """Unify line endings and spaces, join words hyphenated across lines, drop control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n").replace("\ufffe", "")
    text = text.replace("\x02", "").replace("\u00ad", "")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _HYPHEN_BREAK.sub(lambda m: m.group(1) + m.group(2) if m.group(2).islower()
                             else m.group(1) + "-" + m.group(2), text)
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def _signature(line: str) -> str:
    """Compare short lines with numbers masked ("Page 3 of 9" matches "Page 4 of 9"), long ones exactly."""
    text = line.strip().lower()
    # Body sentences that differ only in a number are content, not a running header.
    return _DIGITS.sub("#", text) if len(text.split()) <= 8 else text


def _page_key(page: str) -> str:
    """A page's text without its page-number lines ("7", "Page 3 of 9"), which differ even on repeated pages."""
    lines = (line.strip() for line in page.split("\n"))
    return "\n".join(line for line in lines if line and not ("#" in _signature(line) and len(line.split()) <= 4))


def remove_repeated_lines(pages: list[str], min_pages: int = 3, share: float = 0.6) -> list[str]:
    """Drop header/footer lines that recur at the top or bottom of most pages.

    Pages that repeat word for word (an agenda slide shown again, a file of identical pages) count once: their
    lines recur because the page recurs, not because they are furniture. Clean-up never empties a document.
    """
    # One page per distinct text: the first of each set of repeated pages.
    distinct = list({key: page for page in reversed(pages) if (key := _page_key(page))}.values())
    if len(distinct) < min_pages:
        return pages
    counts: Counter[str] = Counter()
    for page in distinct:
        lines = [line for line in page.split("\n") if line.strip()]
        edges = set(lines[:_EDGE_LINES] + lines[-_EDGE_LINES:])
        counts.update({_signature(line) for line in edges})
    needed = max(min_pages, int(share * len(distinct) + 0.999))
    repeated = {sig for sig, n in counts.items() if n >= needed and sig.strip("# ")}
    # A lone page number is also a footer, even without other text around it.
    repeated.add("#")
    cleaned = []
    for page in pages:
        lines = page.split("\n")
        nonblank = [i for i, line in enumerate(lines) if line.strip()]
        edge_idx = set(nonblank[:_EDGE_LINES] + nonblank[-_EDGE_LINES:])
        kept = [line for i, line in enumerate(lines)
                if not (i in edge_idx and _signature(line) in repeated)]
        cleaned.append("\n".join(kept).strip())
    # Lines on every page of a document with little else are its text, not furniture.
    return cleaned if any(cleaned) else pages
