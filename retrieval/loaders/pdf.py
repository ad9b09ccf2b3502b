"""PDF loader: pypdfium2 (fast, permissive licence), pypdf as a fallback, tesseract OCR when installed."""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any

from retrieval.errors import (CorruptDocumentError, EmptyDocumentError, EncryptedDocumentError,
                              IngestError, NoTextLayerError)
from retrieval.language import detect_language
from retrieval.loaders.cleanup import normalise_text, remove_repeated_lines
from retrieval.loaders.words import Lexicon
from retrieval.loaders.limits import LoadLimits, OcrProgress
from retrieval.loaders.pdf_code import indent_listings
from retrieval.loaders.pdf_tables import (PageStructure, carry_headers, is_tagged, read_page_structure,
                                          remove_table_lines)
from retrieval.loaders.unpack import check_pdf_streams
from retrieval.types import Section

log = logging.getLogger(__name__)

_WORD_CHAR = re.compile(r"\w", re.UNICODE)
_MARK = "\ufffe"
_MARKS_AND_SPACES = re.compile(r"[\s\x02\ufffe]+")
_MIN_WORD_CHARS = 3  # fewer letters/digits than this on every page: the PDF is a scan (a one-word page is text)
_OCR_PAGE_SECONDS = 120  # one page at 300 dpi takes 1-5 s on a small CPU


def extract_pages(data: bytes, limits: LoadLimits, structures: list[PageStructure] | None = None
                  ) -> tuple[list[str], dict[str, str]]:
    """Return the raw text of every page and the document's metadata (title, author).

    ``structures``, when given, receives each page's tables and figure texts from a tagged PDF's structure tree
    (one entry per page; all empty for untagged PDFs and for PDFs only pypdf can read).
    """
    try:
        return _extract_pdfium(data, limits, structures)
    except (IngestError, MemoryError):  # out of memory is not "damaged": the sandbox reports it
        raise
    except Exception as exc:  # pdfium rejects some damaged files that pypdf can still repair
        log.info("pdfium failed (%s); trying pypdf", exc)
    pages, meta = _extract_pypdf(data, limits)
    if structures is not None:
        structures[:] = [PageStructure() for _ in pages]
    return pages, meta


def _extract_pdfium(data: bytes, limits: LoadLimits, structures: list[PageStructure] | None = None
                    ) -> tuple[list[str], dict[str, str]]:
    """Extract with pypdfium2; a password error becomes a typed error."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise EncryptedDocumentError() from exc
        raise
    try:
        if len(pdf) > limits.max_pages:
            raise IngestError("too_many_pages", f"This PDF has {len(pdf)} pages; the limit is "
                                                f"{limits.max_pages}. Split it and upload the parts.")
        meta = {k.lower(): str(v) for k, v in pdf.get_metadata_dict(skip_empty=True).items()}
        pages = []
        tagged = structures is not None and is_tagged(pdf.raw)
        fonts: dict[int | None, bool] = {}  # which of the document's fonts are monospace (code listings)
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            pages.append(indent_listings(_page_text(textpage), page.raw, textpage.raw, fonts))
            if structures is not None:
                structures.append(read_page_structure(page.raw, textpage.raw) if tagged else PageStructure())
            textpage.close()
            page.close()
        if tagged and structures is not None:
            carry_headers(structures)  # a table's rows on the page after its header's name their columns too
        return pages, meta
    finally:
        pdf.close()


def _page_text(textpage: Any) -> str:
    """A page's text with marks where pdfium lost letters: U+FFFE for an unmapped glyph, U+0002 for a line-end hyphen.

    ``get_text_bounded`` (text inside the page box) silently drops glyphs without a Unicode mapping, often the
    "fi"/"ff"/"fl" ligatures ("Die Klausur ndet statt"); ``get_text_range`` keeps them as U+FFFE but also returns
    text outside the page box. The range text is used only when it differs from the bounded text by marks alone.
    """
    bounded = textpage.get_text_bounded()
    full = textpage.get_text_range()
    if _MARK not in full or _MARKS_AND_SPACES.sub("", full) != _MARKS_AND_SPACES.sub("", bounded):
        return str(bounded)
    return _classify_marks(textpage, full)


def _classify_marks(textpage: Any, text: str) -> str:
    """Turn each U+FFFE that pdfium knows is a hyphen it removed at a line end into U+0002 (see ``words``)."""
    import pypdfium2.raw as raw

    count = textpage.count_chars()
    chars = list(text)
    offset = 0  # pdfium counts some characters that its text leaves out: find each mark's character index
    for j, char in enumerate(text):
        if char != _MARK:
            continue
        for k in range(j + offset, min(count, j + offset + 8)):
            if raw.FPDFText_GetUnicode(textpage, k) in (0, 2, 0xFFFE) and (
                    j + 1 >= len(text) or raw.FPDFText_GetUnicode(textpage, k + 1) == ord(text[j + 1])):
                offset = k - j
                if raw.FPDFText_IsHyphen(textpage, k) == 1:
                    chars[j] = "\x02"
                break
    return "".join(chars)


def _extract_pypdf(data: bytes, limits: LoadLimits) -> tuple[list[str], dict[str, str]]:
    """Extract with pypdf, which tolerates some broken cross-reference tables."""
    import io

    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocumentError()
        if len(reader.pages) > limits.max_pages:
            raise IngestError("too_many_pages", f"This PDF has {len(reader.pages)} pages; the limit is "
                                                f"{limits.max_pages}. Split it and upload the parts.")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = {k.lstrip("/").lower(): str(v) for k, v in (reader.metadata or {}).items()}
    except IngestError:
        raise
    except Exception as exc:
        raise CorruptDocumentError() from exc
    return pages, meta


def ocr_available() -> bool:
    """Whether the ``tesseract`` binary is installed."""
    return shutil.which("tesseract") is not None


def render_scale(width_pt: float, height_pt: float, max_pixels: int, dpi: int = 300) -> float:
    """Scale for rendering a page at ``dpi``, reduced so that the image has at most ``max_pixels`` pixels."""
    scale = dpi / 72
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    return min(scale, (max_pixels / area) ** 0.5)


def _ocr_pages(data: bytes, indices: list[int], on_page: OcrProgress | None = None,
               max_pixels: int = LoadLimits.max_page_pixels) -> dict[int, str]:
    """Render the given pages with pdfium and read them with tesseract (German and English models if present)."""
    import pypdfium2 as pdfium

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow refuses larger images (a decompression-bomb guard)
    pdf = pdfium.PdfDocument(data)
    texts: dict[int, str] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in indices:
                path = os.path.join(tmp, f"p{i}.png")
                page = pdf[i]
                width, height = page.get_size()
                page.render(scale=render_scale(width, height, max_pixels)).to_pil().save(path)
                page.close()
                texts[i] = _tesseract(path)
                if on_page is not None:
                    on_page(len(texts), len(indices))
    finally:
        pdf.close()
    return texts


def _tesseract(path: str) -> str:
    """Text of one page image; empty when tesseract fails or takes too long (the page then stays empty)."""
    for command in (["tesseract", path, "stdout", "-l", "deu+eng"], ["tesseract", path, "stdout"]):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_OCR_PAGE_SECONDS,
                                    check=False)
        except (subprocess.TimeoutExpired, OSError) as exc:
            log.warning("OCR of one page failed: %s", type(exc).__name__)
            return ""
        if result.returncode == 0:  # else: language packs missing, retry with tesseract's default model
            return result.stdout
    return ""


def _scanned(text: str) -> bool:
    """A page without (almost) any letters or digits has no usable text layer."""
    return len(_WORD_CHAR.findall(text)) < _MIN_WORD_CHARS


def load_pdf_pages(data: bytes, limits: LoadLimits, on_ocr_page: OcrProgress | None = None,
                   tables: dict[int, list[str]] | None = None) -> tuple[list[str], dict[str, str], bool]:
    """Return cleaned page texts, metadata and whether OCR produced any of them.

    Pages without a text layer (scans, photographed slides) are read with tesseract when it is installed,
    also inside PDFs whose other pages have text; at most ``limits.ocr_max_pages`` pages per file.
    ``tables``, when given, receives the tables of a tagged PDF by page number (1-based), each as
    "Header: value" rows; their lines are then left out of the page texts.
    """
    check_pdf_streams(data, limits.max_uncompressed_bytes)  # before pdfium inflates anything
    structures: list[PageStructure] = []
    pages, meta = extract_pages(data, limits, structures if tables is not None else None)
    if not pages:
        raise EmptyDocumentError("This PDF has no pages.")
    blank = [i for i, page in enumerate(pages) if _scanned(page)]
    can_ocr = limits.ocr and ocr_available()
    recognised = 0
    if blank and can_ocr:
        log.info("no text layer on %d of %d pages; running OCR", len(blank), len(pages))
        for i, text in _ocr_pages(data, blank[:limits.ocr_max_pages], on_ocr_page, limits.max_page_pixels).items():
            if not _scanned(text):
                pages[i] = text
                recognised += 1
        meta["ocr_pages"] = str(recognised)
    if all(_scanned(p) for p in pages):
        if not can_ocr:
            raise NoTextLayerError()
        raise NoTextLayerError("This PDF contains no text, and text recognition (OCR) found none either.")
    # The document's own words and language decide what a lost ligature or a line-end hyphen was.
    lexicon = Lexicon.from_texts(pages, detect_language(" ".join(pages[:50])))
    if tables is not None:
        pages = _apply_structure(pages, structures, tables, lexicon)
    cleaned = remove_repeated_lines([normalise_text(p, lexicon) for p in pages])
    return cleaned, meta, recognised > 0


def _apply_structure(pages: list[str], structures: list[PageStructure], tables: dict[int, list[str]],
                     lexicon: Lexicon) -> list[str]:
    """Move each page's tables into ``tables`` and out of its text; add its figures' alternative texts.

    Done after the text-layer checks, so a page that is all table or all figure is never taken for a scan.
    """
    result = []
    for number, (text, structure) in enumerate(zip(pages, structures), start=1):
        if structure.tables:
            tables[number] = [normalise_text(t, lexicon) for t in structure.tables]
            text = remove_table_lines(text, structure.table_lines)
        if structure.alt_texts:  # a figure's alternative text says what it shows (as for HTML and Office)
            text = text + "\n\n" + "\n".join(structure.alt_texts)
        result.append(text)
    return result + pages[len(result):]


def pdf_sections(pages: list[str], tables: dict[int, list[str]]) -> list[Section]:
    """One body section per page with text, followed by that page's tables as ``kind="table"`` sections."""
    sections = []
    for number, text in enumerate(pages, start=1):
        if text:
            sections.append(Section(text=text, position=number))
        sections.extend(Section(text=t, position=number, kind="table") for t in tables.get(number, []) if t)
    return sections
