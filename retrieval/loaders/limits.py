"""Limits applied to every upload before and while it is parsed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

OcrProgress = Callable[[int, int], None]
"""Called as ``(pages read, pages to read)`` after each page that OCR reads."""


@dataclass(frozen=True)
class LoadLimits:
    """Size and safety limits for one file (the product configures these; defaults match the issue)."""

    max_bytes: int = 50 * 1024 * 1024  # per uploaded file
    max_uncompressed_bytes: int = 512 * 1024 * 1024  # unpacked: DOCX/PPTX members, PDF Flate streams (not images)
    max_compression_ratio: float = 200.0  # archive members: uncompressed / compressed
    max_archive_members: int = 20000
    max_pages: int = 5000
    ocr: bool = True  # run tesseract on text-less PDFs when the binary is installed
    ocr_max_pages: int = 200
    max_page_pixels: int = 25_000_000  # OCR renders a page at 300 dpi, or smaller so it stays below this (A3: 17 M)
