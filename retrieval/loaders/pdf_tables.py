"""Tagged PDFs: tables read from the structure tree (header repeated with each row) and figures' alternative text.

pdfium's text of a page reads a table as loose lines ("Name Credits", "Logic 6"); a tagged PDF says which text is
which cell. Each Table element's rows (TR, also inside THead/TBody/TFoot) and cells (TH/TD) become rows for
:func:`retrieval.loaders.office.table_rows`, the format DOCX, PPTX and HTML tables have; the table's lines are
then taken out of the page's body text. Untagged PDFs, and PDFs whose structure tree pdfium cannot read, are
left exactly as they were: every failure here means "no structure".

A table that runs on over a page break seldom repeats its header row there: :func:`carry_headers` gives the rows on
the next page the header of the table they continue, so each page's table section names its columns by itself.
"""
from __future__ import annotations

import ctypes
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from retrieval.loaders.office import table_rows

log = logging.getLogger(__name__)

MAX_ELEMENTS = 20_000  # structure elements visited per page: the loader runs with time and memory limits
MAX_CHARS = 200_000  # characters of a page looked at when cells are filled
_MAX_JOINED = 400  # a body line longer than this is never taken for table lines that pdfium joined
_ROW_GROUPS = {"THead", "TBody", "TFoot"}
_CELLS = {"TH", "TD"}
_SPACES = {0x20, 0x09, 0x0A, 0x0D, 0xA0}
_NEWLINES = {0x0A, 0x0D}
_MARKS = {0, 2, 0xFFFE}
# Alternative texts that say nothing: "Figure", "Bild 3", "image1.png" (written by converters, not by people).
_PLACEHOLDER_ALT = re.compile(r"^(?:figure|fig\.?|image|img|picture|graphic|grafik|bild|abbildung|abb\.?|foto|"
                              r"photo|chart|diagram|diagramm|logo)?\s*\d*$|\.(?:png|jpe?g|gif|bmp|tiff?|svg|emf|wmf)$",
                              re.IGNORECASE)


@dataclass
class TableGrid:
    """A table's cells as read on one page, and where it stands there (for a table that crosses a page break)."""

    rows: list[list[str]]
    header: bool  # its first row is its header (TH cells or a THead)
    continued: bool = False  # the structure tree says rows of the same table stand on an earlier page
    lines_before: int = 0  # lines of other text above it on the page
    lines_after: int = 0  # ... and below it
    labels: list[str] = field(default_factory=list)  # its column names: its header row or the one carried over

    @property
    def columns(self) -> int:
        """The number of columns (its widest row)."""
        return max((len(row) for row in self.rows), default=0)


@dataclass
class PageStructure:
    """What a page's structure tree adds to its text: tables as rows and figures' alternative texts."""

    tables: list[str] = field(default_factory=list)  # each rendered like a DOCX table ("Header: value" rows)
    table_lines: Counter[str] = field(default_factory=Counter)  # body lines made of table text (no spaces)
    alt_texts: list[str] = field(default_factory=list)
    grids: list[TableGrid] = field(default_factory=list)  # the cells behind ``tables``, one for one


@dataclass
class _Table:
    rows: list[list[set[int]]]  # each cell's marked-content ids
    header: bool
    continued: bool = False


def is_tagged(pdf_handle: Any) -> bool:
    """Whether the document says it is tagged (/MarkInfo /Marked true); never raises."""
    import pypdfium2.raw as raw

    try:
        return bool(raw.FPDFCatalog_IsTagged(pdf_handle))
    except Exception:  # an old pdfium without the call, or a damaged catalogue
        return False


def compact(line: str) -> str:
    """A line without spaces and pdfium's marks: how a body line is matched with a table's line."""
    return "".join(c for c in line if not c.isspace() and c not in "\x02\ufffe\x00")


def remove_table_lines(text: str, table_lines: Counter[str]) -> str:
    """The page text without the lines that the page's tables now say (each such line once)."""
    if not table_lines:
        return text
    left = Counter(table_lines)
    kept = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        key = compact(line)
        if key and left[key] > 0:
            left[key] -= 1
            continue
        pieces = _split_into(key, left) if len(key) <= _MAX_JOINED else None
        if pieces:  # pdfium's page text joined two of the table's lines ("Datenbanken8 Sommer")
            left.subtract(pieces)
            continue
        kept.append(line)
    return "\n".join(kept)


def _split_into(key: str, lines: Counter[str]) -> list[str] | None:
    """``key`` as two or more of ``lines`` (each used at most as often as it is left), or None."""
    if not key or not any(key.startswith(line) for line, n in lines.items() if n > 0):
        return None
    ways: dict[int, list[str]] = {0: []}  # prefix length -> the table lines that make it up
    for end in range(1, len(key) + 1):
        for start in sorted(ways):
            piece = key[start:end]
            if start < end and lines[piece] > ways[start].count(piece):
                ways.setdefault(end, ways[start] + [piece])
                break
    found = ways.get(len(key))
    return found if found is not None and len(found) >= 2 else None


def read_page_structure(page_handle: Any, textpage_handle: Any) -> PageStructure:
    """Tables and figure texts of one page of a tagged PDF; empty when the page has none or its tree is broken."""
    try:
        return _read(page_handle, textpage_handle)
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # a broken structure tree is read as no structure: the page keeps its plain text
        log.info("structure tree not usable (%s); reading the page as plain text", type(exc).__name__)
        return PageStructure()


def _read(page_handle: Any, textpage_handle: Any) -> PageStructure:
    """Walk the page's structure tree (at most MAX_ELEMENTS elements), then fill the tables' cells."""
    import pypdfium2.raw as raw

    tree = raw.FPDF_StructTree_GetForPage(page_handle)
    if not tree:
        return PageStructure()
    structure = PageStructure()
    tables: list[_Table] = []
    try:
        budget = [MAX_ELEMENTS]
        stack = [e for e in (raw.FPDF_StructTree_GetChildAtIndex(tree, i)
                             for i in range(min(raw.FPDF_StructTree_CountChildren(tree), MAX_ELEMENTS))) if e]
        stack.reverse()
        while stack and budget[0] > 0:
            element = stack.pop()
            budget[0] -= 1
            kind = _type(element)
            if kind == "Table":
                table = _table(element, budget)
                if table.rows:
                    tables.append(table)
                continue  # a table's figures belong to its cells' text
            if kind == "Figure":
                alt = " ".join(_utf16(raw.FPDF_StructElement_GetAltText, element).split())
                if alt and not _PLACEHOLDER_ALT.search(alt) and alt not in structure.alt_texts:
                    structure.alt_texts.append(alt)
            stack.extend(reversed(_children(element)))
        if tables:
            _fill(tables, textpage_handle, page_handle, structure)
    finally:
        raw.FPDF_StructTree_Close(tree)
    return structure


def _utf16(function: Any, handle: Any) -> str:
    """Call one of pdfium's "write UTF-16LE into a buffer" getters."""
    size = function(handle, None, 0)
    if size <= 2 or size > 1_000_000:
        return ""
    buffer = ctypes.create_string_buffer(size)
    function(handle, buffer, size)
    return buffer.raw[:size].decode("utf-16-le", errors="replace").rstrip("\x00")


def _type(element: Any) -> str:
    """An element's structure type after the role map ("Table", "TR", "TD", ...)."""
    import pypdfium2.raw as raw

    return _utf16(raw.FPDF_StructElement_GetType, element)


def _kids(element: Any) -> list[Any]:
    """An element's kids; a null handle for each kid that is no element here (marked content, or on another page)."""
    import pypdfium2.raw as raw

    count = min(raw.FPDF_StructElement_CountChildren(element), MAX_ELEMENTS)
    return [raw.FPDF_StructElement_GetChildAtIndex(element, i) for i in range(count)]


def _children(element: Any) -> list[Any]:
    """An element's child elements (marked-content and object kids are no elements and are left out)."""
    return [c for c in _kids(element) if c]


def _mcids(element: Any, budget: list[int]) -> set[int]:
    """The marked-content ids of an element and all elements below it."""
    import pypdfium2.raw as raw

    found: set[int] = set()
    stack = [element]
    while stack and budget[0] > 0:
        current = stack.pop()
        budget[0] -= 1
        for i in range(min(raw.FPDF_StructElement_GetMarkedContentIdCount(current), MAX_ELEMENTS)):
            mcid = raw.FPDF_StructElement_GetMarkedContentIdAtIndex(current, i)
            if mcid >= 0:
                found.add(mcid)
        stack.extend(_children(current))
    return found


def _table(element: Any, budget: list[int]) -> _Table:
    """A Table element's rows of cells (as marked-content ids); the header is the first row when it is all TH.

    pdfium's tree of a page leaves out the elements of other pages (their kids read as null): a row group or row
    missing before the first row here means the table began on an earlier page.
    """
    rows: list[list[set[int]]] = []
    kinds: list[list[str]] = []
    in_head: list[bool] = []
    continued = False
    groups = [(element, False)]
    while groups and budget[0] > 0:
        parent, head = groups.pop(0)
        for child in _kids(parent):
            budget[0] -= 1
            if not child:
                continued = continued or not rows
                continue
            kind = _type(child)
            if kind in _ROW_GROUPS:
                groups.append((child, kind == "THead"))
            elif kind == "TR":
                cells = [(c, _type(c)) for c in _children(child)]
                cells = [(c, k) for c, k in cells if k in _CELLS]
                if cells:
                    rows.append([_mcids(c, budget) for c, _ in cells])
                    kinds.append([k for _, k in cells])
                    in_head.append(head)
    # As for HTML, the structure decides: a first row without TH cells (a key-value table, say) is no header.
    header = bool(kinds) and (in_head[0] or all(k == "TH" for k in kinds[0]))
    return _Table(rows=rows, header=header, continued=continued)


def _object_mcids(page_handle: Any) -> dict[int | None, int]:
    """Marked-content id of each top-level page object (by address); objects inside forms are left out."""
    import pypdfium2.raw as raw

    found: dict[int | None, int] = {}
    for i in range(min(raw.FPDFPage_CountObjects(page_handle), MAX_CHARS)):
        obj = raw.FPDFPage_GetObject(page_handle, i)
        if obj:
            mcid = raw.FPDFPageObj_GetMarkedContentID(obj)
            if mcid >= 0:
                found[ctypes.cast(obj, ctypes.c_void_p).value] = mcid
    return found


def _fill(tables: list[_Table], textpage: Any, page_handle: Any, structure: PageStructure) -> None:
    """Read each cell's characters in pdfium's order; note the body lines made of table text only."""
    import pypdfium2.raw as raw

    owner: dict[int, tuple[int, int, int]] = {}  # marked-content id -> (table, row, column)
    for t, table in enumerate(tables):
        for r, row in enumerate(table.rows):
            for c, ids in enumerate(row):
                for mcid in ids:
                    owner.setdefault(mcid, (t, r, c))
    objects = _object_mcids(page_handle)
    texts = [[["" for _ in row] for row in table.rows] for table in tables]
    last: tuple[int, int, int] | None = None
    pending_space = False
    line: list[str] = []
    line_in_table = True
    body_lines = 0  # lines with other text than the tables' so far
    spans: list[list[int]] = [[-1, -1] for _ in tables]  # per table: body lines above its first and last character
    count = min(raw.FPDFText_CountChars(textpage), MAX_CHARS)
    for i in range(count + 1):
        code = raw.FPDFText_GetUnicode(textpage, i) if i < count else 0x0A  # a last newline ends the last line
        if code in _NEWLINES:
            if line and line_in_table:
                structure.table_lines["".join(line)] += 1
            body_lines += not line_in_table
            line, line_in_table = [], True
            pending_space = True
            continue
        obj = raw.FPDFText_GetTextObject(textpage, i)
        object_mcid = objects.get(ctypes.cast(obj, ctypes.c_void_p).value) if obj else None
        cell = owner.get(object_mcid) if object_mcid is not None else None
        if cell is None:
            if code in _SPACES:
                pending_space = True
            else:
                last = None
                if code not in _MARKS:
                    line_in_table = False
            continue
        char = _char(textpage, i, code)
        t, r, c = cell
        if pending_space and last == cell and texts[t][r][c]:
            if texts[t][r][c].endswith("\x02"):  # a word hyphenated at the cell's line end: join it
                texts[t][r][c] = texts[t][r][c][:-1]
            else:
                texts[t][r][c] += " "
        texts[t][r][c] += char
        last, pending_space = cell, False
        spans[t][0] = body_lines if spans[t][0] < 0 else spans[t][0]
        spans[t][1] = body_lines
        if code not in _SPACES and code not in _MARKS:
            line.append(char)
    for table, cells, (above, below) in zip(tables, texts, spans):
        rows = [row for row in ([_clean(c) for c in row] for row in cells) if any(row)]
        rendered = table_rows(rows, header=table.header)
        if rendered.strip():
            structure.tables.append(rendered)
            structure.grids.append(TableGrid(rows, table.header, table.continued, lines_before=above,
                                             lines_after=body_lines - below,
                                             labels=rows[0] if table.header else []))


def carry_headers(pages: list[PageStructure], edge_lines: int = 2) -> None:
    """Give the table that continues one on the previous page that page's header, where it has none of its own.

    A table continues the last table of the previous page when both have as many columns and either the structure
    tree says so (it is the same Table element) or it is the first thing on its page and the other the last on its
    own (``edge_lines``: room for a running header or a page number). Its rows are rendered again, each value with
    its column's name, so the page's table section reads alone; a chain of pages carries the header through.
    """
    previous: TableGrid | None = None
    for page in pages:
        if page.grids:
            grid = page.grids[0]
            if previous is not None and previous.labels and not grid.labels \
                    and grid.columns == previous.columns == len(previous.labels) \
                    and (grid.continued or (grid.lines_before <= edge_lines and previous.lines_after <= edge_lines)):
                grid.labels = previous.labels
                page.tables[0] = table_rows(grid.rows, labels=grid.labels)
        previous = page.grids[-1] if page.grids else None


def _char(textpage: Any, index: int, code: int) -> str:
    """One character as the page text has it: U+0002 for a removed line-end hyphen, U+FFFE for an unmapped glyph."""
    import pypdfium2.raw as raw

    if code in _MARKS:
        return "\x02" if raw.FPDFText_IsHyphen(textpage, index) == 1 else "\ufffe"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffe"
    return chr(code)


def _clean(cell: str) -> str:
    """A cell's text on one line, without a hyphen mark left at its end."""
    return " ".join(cell.split()).rstrip("\x02")


def structure_types(page_handle: Any) -> set[str]:
    """The structure types on one page (at most MAX_ELEMENTS elements looked at); empty when there is no tree."""
    import pypdfium2.raw as raw

    found: set[str] = set()
    try:
        tree = raw.FPDF_StructTree_GetForPage(page_handle)
        if not tree:
            return found
        try:
            stack = [raw.FPDF_StructTree_GetChildAtIndex(tree, i)
                     for i in range(min(raw.FPDF_StructTree_CountChildren(tree), MAX_ELEMENTS))]
            for _ in range(MAX_ELEMENTS):
                if not stack:
                    break
                element = stack.pop()
                if element:
                    found.add(_type(element))
                    stack.extend(_children(element))
        finally:
            raw.FPDF_StructTree_Close(tree)
    except Exception:  # a broken tree: nothing to report
        return set()
    return found
