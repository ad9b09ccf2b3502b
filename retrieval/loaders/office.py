"""DOCX and PPTX loaders (python-docx, python-pptx): headings, tables as rows, slides and speaker notes."""
from __future__ import annotations

import io
import logging
import re
from typing import Any, Iterator

from retrieval.loaders.cleanup import normalise_text
from retrieval.types import Section

log = logging.getLogger(__name__)

_W_T = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}t"
_HEADING_STYLE = re.compile(r"^(?:heading|überschrift)\s*(\d+)$", re.IGNORECASE)


def table_rows(rows: list[list[str]]) -> str:
    """Render a table as one line per row, cells separated by " | " (readable by people and BM25)."""
    lines = []
    previous: list[str] | None = None
    for row in rows:
        cells = [" ".join(c.split()) for c in row]
        # Merged cells repeat their text in python-docx; show each merged cell once.
        deduped = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
        if any(deduped) and deduped != previous:
            lines.append(" | ".join(deduped))
        previous = deduped
    return "\n".join(lines)


def _docx_blocks(document: Any) -> Iterator[Any]:
    """Yield paragraphs and tables of the body in reading order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(child, document)
        elif tag == "tbl":
            yield Table(child, document)


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
        if block.__class__.__name__ == "Table":
            flush()
            rows = [[cell.text for cell in row.cells] for row in block.rows]
            text = table_rows(rows)
            if text:
                sections.append(Section(text=text, heading_path=tuple(t for _, t in path), kind="table"))
                has_text[0] = True
            continue
        text = block.text.strip()
        if not text:
            continue
        level = _heading_level(block)
        if level is None:
            buffer.append(text)
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
            yield table_rows([[cell.text for cell in row.cells] for row in shape.table.rows])
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text


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
