"""Text clean-up shared by the loaders: whitespace, hyphenation, headers and footers repeated on pages."""
from __future__ import annotations

import re
from collections import Counter

from retrieval.listings import indent_width, listing_lines
from retrieval.loaders.words import Lexicon, restore_words

_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_EDGE_LINES = 2  # headers and footers live in the first and last lines of a page


def normalise_text(text: str, lexicon: Lexicon | None = None) -> str:
    """Unify line endings and spaces, restore ligatures and hyphenated words (see ``words``), drop soft hyphens.

    Lines are stripped, except that the lines of a code listing (see ``retrieval.listings``) keep their leading
    indentation, as spaces. ``lexicon`` carries the document's vocabulary and language; without it, the text's
    language is detected.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n").replace("\u00ad", "")
    lines = text.split("\n")
    listing = listing_lines(lines)
    text = "\n".join(_clean_line(line, i in listing) for i, line in enumerate(lines))
    text = restore_words(text, lexicon)
    return strip_blank_lines(_MANY_NEWLINES.sub("\n\n", text))


def _clean_line(line: str, keep_indent: bool) -> str:
    """One line with its spaces unified and stripped (its indentation kept, as spaces, when ``keep_indent``)."""
    body = _SPACES.sub(" ", line).strip()
    return " " * indent_width(line) + body if keep_indent and body else body


def strip_blank_lines(text: str) -> str:
    """The text without blank lines at its start and whitespace at its end; a listing's first indent stays."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    return "\n".join(lines[start:]).rstrip()


def _signature(line: str) -> str:
    """Compare short lines with numbers masked ("Page 3 of 9" matches "Page 4 of 9"), long ones exactly."""
    text = line.strip().lower()
    # Body sentences that differ only in a number are content, not a running header.
    return _DIGITS.sub("#", text) if len(text.split()) <= 8 else text


def _page_key(page: str) -> str:
    """A page's text without its page-number lines ("7", "Page 3 of 9"), which differ even on repeated pages."""
    lines = (line.strip() for line in page.split("\n"))
    return "\n".join(line for line in lines if line and not ("#" in _signature(line) and len(line.split()) <= 4))


def _edges(lines: list[str]) -> set[int]:
    """Indices of the first and last non-blank lines, where running headers and footers (with numbers) stand."""
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    return set(nonblank[:_EDGE_LINES] + nonblank[-_EDGE_LINES:])


def _keys(lines: list[str], edges: set[int]) -> list[set[str]]:
    """Per line, what it is compared by: its exact text anywhere; at a page's edge also with numbers masked."""
    return [({line.strip().lower()} | ({_signature(line)} if i in edges else set())) if line.strip() else set()
            for i, line in enumerate(lines)]


def remove_repeated_lines(pages: list[str], min_pages: int = 3, share: float = 0.5) -> list[str]:
    """Drop page furniture: lines that recur on most pages, wherever they stand (headers, footers, sidebars).

    Beamer navigation (section lists, the talk's title) comes out of pdfium in the middle of a page as often as at
    its edges, so a line that recurs word for word counts wherever it is; lines that differ only in a number
    ("Page 3 of 9") count at the edges only, where a template line in the body ("Aufgabe 3") does not stand.
    Pages that repeat word for word (an agenda slide shown again, a file of identical pages) count once: their
    lines recur because the page recurs, not because they are furniture. Clean-up never empties a document.
    """
    # One page per distinct text: the first of each set of repeated pages.
    distinct = list({key: page for page in reversed(pages) if (key := _page_key(page))}.values())
    repeated = {"#"}  # a lone page number at a page's edge is a footer, even without other text around it
    if len(distinct) >= min_pages:
        counts: Counter[str] = Counter()
        for page in distinct:
            lines = page.split("\n")
            counts.update(set().union(*_keys(lines, _edges(lines))))
        needed = max(min_pages, int(share * len(distinct) + 0.999))
        repeated |= {key for key, n in counts.items() if n >= needed and key.strip("# ")}
    cleaned = []
    for page in pages:
        lines = page.split("\n")
        keys = _keys(lines, _edges(lines))
        cleaned.append(strip_blank_lines("\n".join(line for line, key in zip(lines, keys) if not key & repeated)))
    # Lines on every page of a document with little else are its text, not furniture.
    return cleaned if any(cleaned) else pages
