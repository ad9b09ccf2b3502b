"""One entry point that turns an uploaded file into a :class:`~retrieval.types.Document`, or a typed error."""
from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from xml.etree.ElementTree import ParseError

from retrieval.errors import CorruptDocumentError, EmptyDocumentError, FileTooLargeError, IngestError
from retrieval.language import detect_language
from retrieval.loaders import sniff
from retrieval.loaders.limits import LoadLimits, OcrProgress
from retrieval.types import Document, Locator

__all__ = ["LoadLimits", "OcrProgress", "load_document", "load_documents", "decode_text", "document_id_for"]

log = logging.getLogger(__name__)


def document_id_for(data: bytes) -> str:
    """A content hash: the same bytes always get the same id (re-uploads are recognised)."""
    return hashlib.sha256(data).hexdigest()[:32]


def decode_text(data: bytes) -> str:
    """Decode text files: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _title_from(filename: str) -> str:
    """The file name without directories: what a student recognises in a citation."""
    return os.path.basename(filename) or "Untitled"


def load_document(data: bytes, filename: str, media_type: str | None = None,
                  limits: LoadLimits | None = None, document_id: str | None = None,
                  on_ocr_page: OcrProgress | None = None) -> Document:
    """Load one file of any supported type (detected from its bytes) into a Document with positions.

    ``on_ocr_page(done, total)`` is called after each page that OCR reads (scans take seconds per page).

    Raises an :class:`~retrieval.errors.IngestError` subclass with a teacher-readable message on failure.
    """
    limits = limits or LoadLimits()
    if len(data) > limits.max_bytes:
        raise FileTooLargeError(len(data), limits.max_bytes)
    if not data.strip():
        raise EmptyDocumentError("This file is empty.")
    kind = sniff.sniff_kind(data, filename, media_type)
    doc_id = document_id or document_id_for(data)
    title = _title_from(filename)
    locator = Locator.SECTION
    metadata: dict[str, str] = {"kind": kind}
    try:
        if kind == sniff.PDF:
            from retrieval.loaders.pdf import load_pdf_pages, pdf_sections

            tables: dict[int, list[str]] = {}  # a tagged PDF's tables by page
            pages, meta, used_ocr = load_pdf_pages(data, limits, on_ocr_page, tables)
            sections = pdf_sections(pages, tables)
            locator = Locator.PAGE
            metadata["pages"] = str(len(pages))
            if used_ocr:
                metadata["ocr"] = "true"
                metadata["ocr_pages"] = meta.get("ocr_pages", "")
            if meta.get("title"):
                metadata["pdf_title"] = meta["title"]
        elif kind in (sniff.DOCX, sniff.PPTX):
            from retrieval.loaders import office

            sniff.check_archive(data, limits)
            if kind == sniff.DOCX:
                sections, doc_title = office.load_docx_sections(data)
            else:
                sections, doc_title = office.load_pptx_sections(data)
                locator = Locator.SLIDE
            if doc_title:
                metadata["doc_title"] = doc_title
        else:
            text = decode_text(data)
            if kind == sniff.HTML:
                from retrieval.loaders.html_slides import load_html_sections

                sections, html_title = load_html_sections(text)
                if html_title:
                    metadata["html_title"] = html_title
                if any(s.position is not None for s in sections):  # a slide deck (remark, reveal.js)
                    locator = Locator.SLIDE
            elif kind == sniff.MARKDOWN:
                from retrieval.loaders.markup import load_markdown_sections

                sections, md_title = load_markdown_sections(text)
                if md_title:
                    metadata["md_title"] = md_title
            else:
                from retrieval.loaders.markup import load_text_sections

                sections = load_text_sections(text)
    except (IngestError, MemoryError):  # out of memory is not "damaged": the sandbox reports it
        raise
    except (zipfile.BadZipFile, ParseError, KeyError, ValueError, OSError, EOFError) as exc:
        log.info("could not parse %s as %s: %s", kind, kind, exc)
        raise CorruptDocumentError() from exc
    except Exception as exc:  # third-party parsers raise many types; any of them means "damaged"
        log.warning("unexpected %s while parsing a %s file", type(exc).__name__, kind)
        raise CorruptDocumentError() from exc
    if not any(s.text.strip() for s in sections):
        raise EmptyDocumentError()
    language = detect_language(" ".join(s.text for s in sections[:50]))
    return Document(document_id=doc_id, title=title, sections=tuple(sections), locator=locator,
                    media_type=sniff.MEDIA_TYPES[kind], language=language, metadata=metadata)


def load_documents(files: list[tuple[bytes, str]], limits: LoadLimits | None = None
                   ) -> list[Document | IngestError]:
    """Load several files; each gets its Document or its error, so one bad file never stops the others."""
    results: list[Document | IngestError] = []
    for data, filename in files:
        try:
            results.append(load_document(data, filename, limits=limits))
        except IngestError as exc:
            log.info("file not ingested: %s", exc.code)
            results.append(exc)
    return results
