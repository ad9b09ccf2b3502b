"""What the bot read, page by page: the teacher excludes a page or replaces its text, per file version.

A document's *pages* are its pages or slides (numbered as the file numbers them) or, for files without pages
(DOCX, HTML, Markdown, text), its sections under one heading, counted 1, 2, ... Ingestion stores every page's
extracted text (:class:`MaterialPage`) and applies the teacher's edits of this file version before chunking, so the
index only ever holds what the teacher let through. An edit made for an earlier version of the file is carried
over when a new version replaces it, shown beside the new text, and applied only once the teacher keeps it.
Services only ``flush()``; the view commits and dispatches the re-index.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Iterable

from sqlalchemy import select, update

from course_bots.materials.models import Material, MaterialChunk, MaterialPage, MaterialPageEdit
from course_bots.materials.operations import MaterialError, reindex_material
from lti_tool.extensions import db, utcnow
from retrieval.chunking import chunk_document
from retrieval.types import Chunk, Document, Locator, Section

HEADING_JOINER = " › "
MAX_REPLACEMENT_CHARS = 20000  # as an FAQ answer: a teacher's text


@dataclass(frozen=True)
class PageUnit:
    """One page, slide or section of a document: its number, heading and sections."""

    number: int
    heading: str
    sections: tuple[Section, ...]

    @property
    def text(self) -> str:
        """The page's text as the reader extracted it."""
        return "\n\n".join(s.text for s in self.sections if s.text)


def paged(document: Document) -> bool:
    """Whether the document numbers pages or slides (else its sections are counted)."""
    return document.locator in (Locator.PAGE, Locator.SLIDE)


def page_units(document: Document) -> list[PageUnit]:
    """The document cut into pages (by page/slide number) or sections (by heading), in reading order."""
    if paged(document):
        by_number: dict[int, list[Section]] = {}
        for section in document.sections:
            if section.position is not None:
                by_number.setdefault(section.position, []).append(section)
        return [PageUnit(number, HEADING_JOINER.join(group[0].heading_path), tuple(group))
                for number, group in by_number.items()]
    return [PageUnit(number, HEADING_JOINER.join(path), tuple(group))
            for number, (path, group) in enumerate(groupby(document.sections, key=lambda s: s.heading_path), 1)]


def apply_edits(document: Document, units: list[PageUnit], edits: dict[int, MaterialPageEdit]) -> Document:
    """The document as the teacher wants it indexed: excluded pages gone, replaced pages with the teacher's text.

    Sections of a document without pages carry their section number as position (for :func:`chunk_pages`).
    """
    number_of = {id(s): u.number for u in units for s in u.sections}
    replaced: set[int] = set()
    kept: list[Section] = []
    for section in document.sections:
        number = number_of.get(id(section))
        if number is None:
            kept.append(section)
            continue
        edit = edits.get(number)
        if edit is not None and edit.excluded:
            continue
        if edit is not None and edit.replacement is not None:
            if number not in replaced:
                replaced.add(number)
                kept.append(Section(edit.replacement, number, section.heading_path, "body"))
            continue
        kept.append(dataclasses.replace(section, position=number))
    return dataclasses.replace(document, sections=tuple(kept))


def chunk_pages(document: Document) -> tuple[list[Chunk], dict[int, list[int]]]:
    """Chunks of an edited document and, per page number, the ordinals of the chunks made of that page."""
    chunks = chunk_document(document)
    passages: dict[int, list[int]] = {}
    for chunk in chunks:
        if chunk.position is None:
            continue
        for number in range(chunk.position, (chunk.position_end or chunk.position) + 1):
            passages.setdefault(number, []).append(chunk.ordinal)
    if not paged(document):  # section numbers are ours, not the file's: citations name the heading
        chunks = [dataclasses.replace(c, position=None, position_end=None) for c in chunks]
    return chunks, passages


def current_edits(material: Material) -> dict[int, MaterialPageEdit]:
    """This file version's edits by page number (what ingestion applies)."""
    rows = db.session.scalars(select(MaterialPageEdit).filter_by(material_id=material.id, sha256=material.sha256))
    return {e.number: e for e in rows}


def store_pages(material: Material, document: Document, units: list[PageUnit],
                passages: dict[int, list[int]]) -> None:
    """Replace the material's stored pages with this ingestion's (the file's own text, before edits)."""
    db.session.execute(MaterialPage.__table__.delete().where(MaterialPage.material_id == material.id))
    db.session.add_all(MaterialPage(material_id=material.id, number=u.number, locator=document.locator.value,
                                    heading=u.heading, text=u.text, passages=passages.get(u.number, []))
                       for u in units)


def carry_edits(old: Material, new: Material) -> int:
    """Move an old version's edits to the version replacing it (kept there for the teacher's decision)."""
    result = db.session.execute(update(MaterialPageEdit).where(MaterialPageEdit.material_id == old.id)
                                .values(material_id=new.id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _page(material: Material, number: int) -> MaterialPage:
    page = db.session.scalars(select(MaterialPage).filter_by(material_id=material.id, number=number)).first()
    if page is None:
        raise MaterialError("page_not_found", "This page does not exist in this file.", 404)
    return page


def set_page_edit(material: Material, number: int, excluded: bool, replacement: str | None) -> MaterialPageEdit | None:
    """Exclude a page, replace its text, or (neither) restore it; queues the file for re-indexing."""
    page = _page(material, number)
    if replacement is not None:
        replacement = replacement.replace("\r\n", "\n").strip()
        if not replacement:
            raise MaterialError("invalid_page_edit", "Write the page's text, or exclude the page.")
        if len(replacement) > MAX_REPLACEMENT_CHARS:
            raise MaterialError("invalid_page_edit", f"A page's text may have at most {MAX_REPLACEMENT_CHARS:,} "
                                "characters.")
        if replacement == page.text.strip():
            replacement = None  # unchanged text is no edit
    edit = current_edits(material).get(number)
    if not excluded and replacement is None:
        if edit is not None:
            db.session.delete(edit)
        edit = None
    else:
        if edit is None:
            edit = MaterialPageEdit(bot_id=material.bot_id, material_id=material.id, sha256=material.sha256,
                                    number=number)
            db.session.add(edit)
        edit.excluded, edit.replacement = bool(excluded), replacement
        edit.original_text, edit.edited_at = page.text, utcnow()
    reindex_material(material)
    return edit


def _previous(material: Material, number: int | None = None) -> list[MaterialPageEdit]:
    """Edits of earlier versions of this file still waiting for the teacher's decision, newest first."""
    query = select(MaterialPageEdit).where(MaterialPageEdit.material_id == material.id,
                                           MaterialPageEdit.sha256 != material.sha256)
    if number is not None:
        query = query.where(MaterialPageEdit.number == number)
    return list(db.session.scalars(query.order_by(MaterialPageEdit.edited_at.desc(), MaterialPageEdit.id.desc())))


def decide_previous(material: Material, number: int, keep: bool) -> bool:
    """Keep (apply to this version) or drop an earlier version's edit of a page; True when re-indexing is due."""
    previous = _previous(material, number)
    if not previous:
        raise MaterialError("edit_not_found", "There is no edit of an earlier version for this page.", 404)
    if keep:
        page = _page(material, number)
        current = current_edits(material).get(number)
        if current is not None:
            db.session.delete(current)
            db.session.flush()
        chosen = previous[0]
        chosen.sha256, chosen.original_text, chosen.edited_at = material.sha256, page.text, utcnow()
        previous = previous[1:]
    for edit in previous:
        db.session.delete(edit)
    db.session.flush()
    if keep:
        reindex_material(material)
    return keep


def edit_counts(material_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per material: pages excluded, pages replaced, earlier versions' edits to review."""
    ids = list(material_ids)
    counts: dict[int, dict[str, int]] = {i: {"excluded": 0, "replaced": 0, "to_review": 0} for i in ids}
    if not ids:
        return counts
    rows = db.session.execute(select(MaterialPageEdit.material_id, MaterialPageEdit.excluded,
                                     MaterialPageEdit.sha256, Material.sha256)
                              .join(Material, Material.id == MaterialPageEdit.material_id)
                              .where(MaterialPageEdit.material_id.in_(ids)))
    for material_id, excluded, edit_sha, material_sha in rows:
        key = "to_review" if edit_sha != material_sha else ("excluded" if excluded else "replaced")
        counts[material_id][key] += 1
    return counts


def _edit_json(edit: MaterialPageEdit | None) -> dict[str, Any] | None:
    if edit is None:
        return None
    return {"excluded": edit.excluded, "replacement": edit.replacement, "original_text": edit.original_text,
            "edited_at": edit.edited_at.isoformat() if edit.edited_at else None}


def pages_json(material: Material) -> dict[str, Any]:
    """Every page with its extracted text, this version's edit, an earlier version's edit and the passages."""
    pages = list(db.session.scalars(select(MaterialPage).filter_by(material_id=material.id)
                                    .order_by(MaterialPage.number)))
    chunks = {c.ordinal: c for c in db.session.scalars(select(MaterialChunk).filter_by(material_id=material.id))}
    edits = current_edits(material)
    previous: dict[int, MaterialPageEdit] = {}
    for earlier in _previous(material):
        previous.setdefault(earlier.number, earlier)
    numbers = {p.number for p in pages}
    items = []
    for page in pages:
        edit, before = edits.get(page.number), previous.get(page.number)
        items.append({
            "number": page.number, "heading": page.heading, "text": page.text, "edit": _edit_json(edit),
            "previous_edit": (dict(_edit_json(before) or {}, text_unchanged=before.original_text == page.text)
                              if before is not None else None),
            "passages": [{"ordinal": o, "text": chunks[o].text} for o in page.passages if o in chunks]})
    orphans = [dict(_edit_json(e) or {}, number=n) for n, e in sorted(previous.items()) if n not in numbers]
    return {"material_id": material.id, "filename": material.filename, "status": material.status,
            "locator": pages[0].locator if pages else None, "available": bool(pages), "pages": items,
            "previous_without_page": orphans}
