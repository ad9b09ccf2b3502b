"""OCR of PDF pages without a text layer through the real tesseract binary (installed by .ci/run)."""
from __future__ import annotations

import io
import shutil
from typing import Callable

import pytest

from retrieval.errors import NoTextLayerError
from retrieval.loaders import load_document
from retrieval.loaders.limits import LoadLimits
from tests.conftest import unavailable


@pytest.fixture(scope="module")
def tesseract() -> None:
    """Skip locally without tesseract; CI installs it, so there its absence fails."""
    if shutil.which("tesseract") is None:
        unavailable("tesseract (apt-get install tesseract-ocr tesseract-ocr-deu)")


def scanned(make_pdf: Callable[..., bytes], pages: list[list[str] | None]) -> bytes:
    """A PDF whose pages are pictures of text (None: a page with a real text layer saying so)."""
    import pypdfium2 as pdfium
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    out = canvas.Canvas(buffer, pagesize=A4)
    for lines in pages:
        if lines is None:
            out.drawString(72, 760, "This page has a real text layer about sorting algorithms.")
        else:
            source = pdfium.PdfDocument(make_pdf([lines]))
            image = source[0].render(scale=200 / 72).to_pil()
            source.close()
            out.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
        out.showPage()
    out.save()
    return buffer.getvalue()


def test_a_scanned_pdf_is_read_with_ocr(tesseract: None, make_pdf: Callable[..., bytes]) -> None:
    data = scanned(make_pdf, [["Photosynthesis converts light energy into chemical energy."],
                              ["Mitochondria are the powerhouse of the cell."]])
    with pytest.raises(NoTextLayerError):  # the image really has no text layer
        load_document(data, "scan.pdf", limits=LoadLimits(ocr=False))
    document = load_document(data, "scan.pdf")
    assert document.metadata["ocr"] == "true" and document.metadata["ocr_pages"] == "2"
    by_page = {s.position: s.text.lower() for s in document.sections}
    assert "photosynthesis" in by_page[1] and "mitochondria" in by_page[2]


def test_single_scanned_pages_inside_a_text_pdf_are_read(tesseract: None, make_pdf: Callable[..., bytes]) -> None:
    data = scanned(make_pdf, [None, ["Die Wärmeleitung im Festkörper folgt dem Fourierschen Gesetz."]])
    document = load_document(data, "mixed.pdf")
    by_page = {s.position: s.text for s in document.sections}
    assert "sorting algorithms" in by_page[1]
    assert "Fourier" in by_page[2] and document.metadata["ocr_pages"] == "1"


def test_ocr_that_finds_nothing_says_so(tesseract: None) -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.rect(100, 100, 300, 300, fill=1)
    pdf.showPage()
    pdf.save()
    with pytest.raises(NoTextLayerError) as info:
        load_document(buffer.getvalue(), "scan.pdf")
    assert "OCR" in info.value.message


def test_ocr_can_be_limited_per_file(tesseract: None, make_pdf: Callable[..., bytes]) -> None:
    data = scanned(make_pdf, [["First scanned page about graphs."], ["Second scanned page about trees."]])
    document = load_document(data, "scan.pdf", limits=LoadLimits(ocr_max_pages=1))
    assert document.metadata["ocr_pages"] == "1"
    assert [s.position for s in document.sections] == [1]
