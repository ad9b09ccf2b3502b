"""Decide a file's real type from its bytes (uploads are often mislabelled) and guard ZIP archives."""
from __future__ import annotations

import io
import logging
import zipfile

from retrieval.errors import ArchiveBombError, CorruptDocumentError, UnsupportedTypeError
from retrieval.loaders.limits import LoadLimits
from retrieval.loaders.unpack import unpack_message

log = logging.getLogger(__name__)

PDF, DOCX, PPTX, HTML, MARKDOWN, TEXT = "pdf", "docx", "pptx", "html", "markdown", "text"

MEDIA_TYPES = {
    PDF: "application/pdf",
    DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    PPTX: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    HTML: "text/html",
    MARKDOWN: "text/markdown",
    TEXT: "text/plain",
}
_MARKDOWN_EXT = (".md", ".markdown", ".mdown", ".mkd", ".qmd", ".rmd")
_HTML_EXT = (".html", ".htm", ".xhtml")
_BINARY_SIGNATURES = {
    b"\xd0\xcf\x11\xe0": "an old Office format (.doc/.ppt/.xls); save it as .docx or .pptx",
    b"\x89PNG": "an image (PNG)",
    b"\xff\xd8\xff": "an image (JPEG)",
    b"GIF8": "an image (GIF)",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"\x1f\x8b": "a gzip archive",
    b"{\\rtf": "an RTF document; save it as .docx",
}


def sniff_kind(data: bytes, filename: str, media_type: str | None = None) -> str:
    """Return the loader kind for the bytes; the name and declared type only break ties between texts."""
    head = data[:2048]
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(data)
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise UnsupportedTypeError(f"This file is {what}, which is not supported. Upload PDF, Word "
                                       "(.docx), PowerPoint (.pptx), HTML, Markdown or plain text.")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedTypeError()
    name = filename.lower()
    declared = (media_type or "").split(";")[0].strip().lower()
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if name.endswith(_HTML_EXT) or declared in ("text/html", "application/xhtml+xml") \
            or stripped.startswith((b"<!doctype html", b"<html")):
        return HTML
    if name.endswith(_MARKDOWN_EXT) or declared in ("text/markdown", "text/x-markdown"):
        return MARKDOWN
    return TEXT


def _zip_kind(data: bytes) -> str:
    """Tell DOCX from PPTX (and from other ZIP files) by the archive's member names."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CorruptDocumentError() from exc
    if "word/document.xml" in names:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            rels = b""
            if "_rels/.rels" in names:  # read only the start: a member may be a bomb, checked later
                with archive.open("_rels/.rels") as member:
                    rels = member.read(4096)
        if b"purl.oclc.org/ooxml" in rels:
            raise UnsupportedTypeError("This Word file uses the \"Strict Open XML\" format. Save it as a "
                                       "normal Word document (.docx) and upload it again.")
        return DOCX
    if "ppt/presentation.xml" in names:
        return PPTX
    if "xl/workbook.xml" in names:
        raise UnsupportedTypeError("Spreadsheets (.xlsx) are not supported. Export the sheet as PDF and "
                                   "upload that.")
    if "content.xml" in names:
        raise UnsupportedTypeError("OpenDocument files are not supported. Save it as .docx, .pptx or PDF.")
    raise UnsupportedTypeError("This is a ZIP archive, not a document. Upload the files inside it one by one.")


def check_archive(data: bytes, limits: LoadLimits) -> None:
    """Reject ZIP bombs from the central directory alone, before any member is decompressed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CorruptDocumentError() from exc
    if len(infos) > limits.max_archive_members:
        raise ArchiveBombError()
    bomb = ArchiveBombError(unpack_message(limits.max_uncompressed_bytes))
    total = 0
    for info in infos:
        total += info.file_size
        # Tiny members compress badly, so the ratio only means something above a few kilobytes.
        if info.file_size > 1_000_000 and info.file_size > limits.max_compression_ratio * max(
                info.compress_size, 1):
            log.warning("archive member %s: ratio %.0f", info.filename, info.file_size / max(info.compress_size, 1))
            raise bomb
    if total > limits.max_uncompressed_bytes:
        raise bomb
