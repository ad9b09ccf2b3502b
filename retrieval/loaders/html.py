"""HTML loader (BeautifulSoup with the standard-library parser): headings become heading paths."""
from __future__ import annotations

from typing import Any

from retrieval.loaders.cleanup import normalise_text
from retrieval.loaders.office import table_rows
from retrieval.types import Section

_SKIP = {"script", "style", "noscript", "template", "svg", "nav", "head", "button", "form", "iframe"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote", "dd", "dt", "ul", "ol",
           "header", "footer", "main", "aside", "figure", "figcaption", "hr", "caption", "summary"}


class _Walker:
    """Walks the tree once, cutting sections at headings and rendering tables as rows."""

    def __init__(self) -> None:
        """Start with an empty heading path."""
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.buffer: list[str] = []
        self.heading_has_text = False

    def flush(self) -> None:
        """Close the text collected under the current heading (a heading without body is kept as a title)."""
        text = normalise_text("".join(self.buffer))
        path = tuple(t for _, t in self.path)
        if text:
            self.sections.append(Section(text=text, heading_path=path))
            self.heading_has_text = True
        elif path and not self.heading_has_text:
            self.sections.append(Section(text=path[-1], heading_path=path, kind="title"))
            self.heading_has_text = True
        self.buffer.clear()

    def walk(self, node: Any) -> None:
        """Visit a node and its children in document order."""
        from bs4 import Comment, NavigableString, Tag

        if isinstance(node, Comment):
            return
        if isinstance(node, NavigableString):
            self.buffer.append(str(node))
            return
        if not isinstance(node, Tag) or node.name in _SKIP:
            return
        if node.name in _HEADINGS:
            self.flush()
            level = _HEADINGS[node.name]
            heading = " ".join(node.get_text(" ").split())
            if heading:
                self.path = [(lvl, t) for lvl, t in self.path if lvl < level] + [(level, heading)]
                self.heading_has_text = False
            return
        if node.name == "table":
            trs = node.find_all("tr")
            rows = [[cell.get_text(" ") for cell in tr.find_all(["td", "th"])] for tr in trs]
            # A header is marked up as such (<th> cells, <thead>); a table without one gets no labels.
            header = bool(trs) and (trs[0].find_parent("thead") is not None
                                    or all(c.name == "th" for c in trs[0].find_all(["td", "th"])))
            self.buffer.append("\n" + table_rows(rows, header=header) + "\n")
            self.heading_has_text = self.heading_has_text or bool(rows)
            return
        if node.name in ("img", "area"):  # a picture's alternative text says what it shows
            alt = " ".join(str(node.get("alt") or node.get("title") or "").split())
            if alt:
                self.buffer.append(f"\n{alt}\n")
            return
        block = node.name in _BLOCKS
        if block:
            self.buffer.append("\n")
        for child in node.children:
            self.walk(child)
        if block:
            self.buffer.append("\n")


def walk_sections(node: Any) -> list[Section]:
    """The sections of one HTML element (or a whole page), cut at its headings."""
    walker = _Walker()
    walker.walk(node)
    walker.flush()
    return walker.sections
