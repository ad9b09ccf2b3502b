"""DOCX and PPTX loaders (python-docx, python-pptx): headings, tables as rows, slides and speaker notes."""
from __future__ import annotations

import io
import logging
import re
from typing import Any, Iterator

from retrieval.loaders.cleanup import normalise_text
from retrieval.types import Section

log = logging.getLogger(__name__)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W_T = _W + "t"
_WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
_NUMBER = re.compile(r"[-+]?[\d.,]+\s*%?")
_P_CNVPR = "{http://schemas.openxmlformats.org/presentationml/2006/main}cNvPr"
_HEADING_STYLE = re.compile(r"^(?:heading|überschrift)\s*(\d+)$", re.IGNORECASE)


def _looks_like_header(cells: list[str]) -> bool:
    """A first row of short labels (not numbers) is the table's header."""
    filled = [c for c in cells if c]
    return len(filled) >= 2 and len(filled) == len(cells) and all(len(c.split()) <= 8 for c in filled) \
        and not all(_NUMBER.fullmatch(c) for c in filled)


def table_rows(rows: list[list[str]], header: bool | None = None, labels: list[str] | None = None) -> str:
    """Render a table as one line per row, cells separated by " | " (readable by people and BM25).

    With a header row (``header``, or a first row of short labels when None), every later row names each cell's
    column ("Colour: green"), so a row cut off from the header by chunking still says what its values are.
    ``labels``: the column names of a table whose header stands elsewhere (on the page before): every row is
    named with them (a first row that repeats them stays the header).
    """
    cleaned = [[" ".join(c.split()) for c in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    names = [" ".join(c.split()) for c in labels or []]
    first = 0 if names and cleaned and cleaned[0] != names else 1
    if not names and len(cleaned) >= 2 and (header if header is not None else _looks_like_header(cleaned[0])):
        names = cleaned[0]
    lines = []
    previous: list[str] | None = None
    for number, cells in enumerate(cleaned):
        if names and number >= first:
            cells = [f"{names[i]}: {c}" if i < len(names) and names[i] and c and names[i] != c else c
                     for i, c in enumerate(cells)]
        # Merged cells repeat their text in python-docx; show each merged cell once.
        deduped = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
        if deduped and deduped != previous:
            lines.append(" | ".join(deduped))
        previous = deduped
    return "\n".join(lines)


def _local(element: Any) -> str:
    """An element's tag without namespace; "" for comments and processing instructions (their tag is no string)."""
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _docx_blocks(document: Any, parent: Any = None) -> Iterator[Any]:
    """Yield paragraphs and table elements of the body in reading order, also inside content controls."""
    from docx.text.paragraph import Paragraph

    for child in (parent if parent is not None else document.element.body).iterchildren():
        tag = _local(child)
        if tag == "p":
            yield Paragraph(child, document)
        elif tag == "tbl":
            yield child
        elif tag in ("sdt", "sdtContent", "customXml", "ins", "smartTag"):
            yield from _docx_blocks(document, child)


def _cell_text(cell: Any) -> str:
    """The text of a table cell: its paragraphs, one per line (nested tables included)."""
    return "\n".join(t for t in ("".join(r.text or "" for r in p.iter(_W_T)) for p in cell.iter(_W + "p")) if t)


def docx_table_rows(table: Any) -> list[list[str]]:
    """A DOCX table's cells by grid column, read from the XML: merged cells (gridSpan, vMerge) repeat their text.

    python-docx's ``row.cells`` raises on some valid merges ("no tc element at grid_offset") that Word opens.
    """
    rows: list[list[str]] = []
    above: dict[int, str] = {}
    for tr in table.iter(_W + "tr"):
        if next((a for a in tr.iterancestors(_W + "tbl")), None) is not table:
            continue  # a row of a nested table: part of its cell's text
        row: list[str] = []
        for tc in tr.iter(_W + "tc"):
            if next(tc.iterancestors(_W + "tr"), None) is not tr:
                continue
            span, merge = 1, None
            props = tc.find(_W + "tcPr")
            if props is not None:
                grid = props.find(_W + "gridSpan")
                value = grid.get(_W + "val", "1") if grid is not None else "1"
                span = int(value) if value.isdigit() and 0 < int(value) < 64 else 1
                vmerge = props.find(_W + "vMerge")
                merge = (vmerge.get(_W + "val") or "continue") if vmerge is not None else None
            text = above.get(len(row), "") if merge == "continue" else _cell_text(tc)
            for column in range(len(row), len(row) + span):
                above[column] = text
            row.extend([text] * span)
        rows.append(row)
    return rows


def _picture_descriptions(paragraph: Any) -> list[str]:
    """Alternative texts (and titles) of the pictures anchored in a paragraph."""
    texts = []
    for prop in paragraph._p.iter(_WP + "docPr"):
        text = " ".join((prop.get("descr") or prop.get("title") or "").split())
        if text:
            texts.append(text)
    return texts


def _heading_level(paragraph: Any) -> int | None:
    """Return 1.. for heading paragraphs (styles "Heading N" or "Title"), else None."""
    try:
        name = (paragraph.style.name or "") if paragraph.style is not None else ""
    except (KeyError, ValueError):  # a style id missing from styles.xml
        return None
    if name.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(name.strip())
    return int(match.group(1)) if match else None


def load_docx_sections(data: bytes) -> tuple[list[Section], str | None]:
    """Return the sections of a DOCX (one per heading body, one per table) and its core title."""
    import docx
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buffer: list[str] = []
    has_text = [True]  # whether the current heading has body text (a list: mutated by flush)

    def flush() -> None:
        text = normalise_text("\n".join(buffer))
        current = tuple(t for _, t in path)
        if text:
            sections.append(Section(text=text, heading_path=current))
        elif current and not has_text[0]:  # a heading without body is still text
            sections.append(Section(text=current[-1], heading_path=current, kind="title"))
        has_text[0] = True
        buffer.clear()

    for block in _docx_blocks(document):
        if not isinstance(block, Paragraph):  # a table element
            flush()
            text = table_rows(docx_table_rows(block))
            if text:
                sections.append(Section(text=text, heading_path=tuple(t for _, t in path), kind="table"))
                has_text[0] = True
            continue
        pictures = _picture_descriptions(block)
        text = block.text.strip()
        if not text:
            buffer.extend(pictures)
            continue
        level = _heading_level(block)
        if level is None:
            buffer.extend([text, *pictures])
            continue
        flush()
        has_text[0] = False
        path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, text)]
    flush()
    if not sections:
        # Text only in text boxes or drawings: python-docx skips those, the raw runs still have it.
        runs = [t.text or "" for t in document.element.body.iter(_W_T)]
        text = normalise_text(" ".join(r for r in runs if r.strip()))
        if text:
            sections.append(Section(text=text))
    title = document.core_properties.title or None
    return sections, title


def _shape_texts(shapes: Any, skip: Any) -> Iterator[str]:
    """Yield the text of every shape (groups recursively, tables as rows), leaving out ``skip``."""
    for shape in shapes:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        try:
            shape_type = shape.shape_type
        except NotImplementedError:  # python-pptx does not know every shape; its text may still be read
            shape_type = None
        if shape_type is not None and shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
            yield from _shape_texts(shape.shapes, None)
        elif getattr(shape, "has_table", False) and shape.has_table:
            table = shape.table
            yield table_rows([[cell.text for cell in row.cells] for row in table.rows], header=table.first_row)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text
        elif shape_type is not None and shape_type == 13:  # MSO_SHAPE_TYPE.PICTURE: its alternative text
            prop = shape._element.find(".//" + _P_CNVPR)
            if prop is not None and (prop.get("descr") or "").strip():
                yield " ".join(prop.get("descr").split())


def load_pptx_sections(data: bytes) -> tuple[list[Section], str | None]:
    """Return one body section per slide (title as heading) and one "notes" section per slide with notes."""
    import pptx

    presentation = pptx.Presentation(io.BytesIO(data))
    sections: list[Section] = []
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None \
            and title_shape.has_text_frame else ""
        body = normalise_text("\n".join(t for t in _shape_texts(slide.shapes, title_shape) if t.strip()))
        heading = (title,) if title else ()
        text = "\n".join(t for t in (title, body) if t)
        if text:
            sections.append(Section(text=text, position=number, heading_path=heading))
        if slide.has_notes_slide:
            notes_frame = slide.notes_slide.notes_text_frame
            notes = normalise_text(notes_frame.text) if notes_frame is not None else ""
            if notes:
                sections.append(Section(text=notes, position=number, heading_path=heading, kind="notes"))
    deck_title: str | None = presentation.core_properties.title or None
    return sections, deck_title
