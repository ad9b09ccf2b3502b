"""PDF loader: pypdfium2 (fast, permissive licence), pypdf as a fallback, tesseract OCR when installed."""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile

from retrieval.errors import (CorruptDocumentError, EmptyDocumentError, EncryptedDocumentError,
                              IngestError, NoTextLayerError)
from retrieval.loaders.cleanup import normalise_text, remove_repeated_lines
from retrieval.loaders.limits import LoadLimits

log = logging.getLogger(__name__)

_WORD_CHAR = re.compile(r"\w", re.UNICODE)
_MIN_WORD_CHARS = 3  # fewer letters/digits than this on every page: the PDF is a scan (a one-word page is text)


def extract_pages(data: bytes, limits: LoadLimits) -> tuple[list[str], dict[str, str]]:
    """Return the raw text of every page and the document's metadata (title, author)."""
    try:
        return _extract_pdfium(data, limits)
    except IngestError:
        raise
    except Exception as exc:  # pdfium rejects some damaged files that pypdf can still repair
        log.info("pdfium failed (%s); trying pypdf", exc)
    return _extract_pypdf(data, limits)


def _extract_pdfium(data: bytes, limits: LoadLimits) -> tuple[list[str], dict[str, str]]:
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
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
        return pages, meta
    finally:
        pdf.close()


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


def _ocr_pages(data: bytes, limits: LoadLimits) -> list[str]:
    """Render each page with pdfium and read it with tesseract (German and English models if present)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    texts = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(min(len(pdf), limits.ocr_max_pages)):
                image = pdf[i].render(scale=300 / 72).to_pil()
                path = os.path.join(tmp, f"p{i}.png")
                image.save(path)
                result = subprocess.run(["tesseract", path, "stdout", "-l", "deu+eng"],
                                        capture_output=True, text=True, timeout=120, check=False)
                if result.returncode != 0:  # language packs missing: fall back to the default model
                    result = subprocess.run(["tesseract", path, "stdout"], capture_output=True,
                                            text=True, timeout=120, check=False)
                texts.append(result.stdout)
    finally:
        pdf.close()
    return texts


def _scanned(text: str) -> bool:
    """A page without (almost) any letters or digits has no usable text layer."""
    return len(_WORD_CHAR.findall(text)) < _MIN_WORD_CHARS


def load_pdf_pages(data: bytes, limits: LoadLimits) -> tuple[list[str], dict[str, str], bool]:
    """Return cleaned page texts, metadata and whether OCR produced them."""
    pages, meta = extract_pages(data, limits)
    if not pages:
        raise EmptyDocumentError("This PDF has no pages.")
    used_ocr = False
    if all(_scanned(p) for p in pages):
        if not (limits.ocr and ocr_available()):
            raise NoTextLayerError()
        log.info("no text layer on %d pages; running OCR", len(pages))
        pages = _ocr_pages(data, limits)
        used_ocr = True
        if all(_scanned(p) for p in pages):
            raise NoTextLayerError("This PDF contains no text, and text recognition (OCR) found none either.")
    cleaned = remove_repeated_lines([normalise_text(p) for p in pages])
    return cleaned, meta, used_ocr
