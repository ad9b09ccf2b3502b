"""OCR of PDF pages without a text layer through the real tesseract binary (installed by .ci/run)."""
from __future__ import annotations

import io

import pytest

from retrieval.errors import NoTextLayerError
from retrieval.loaders import load_document
from retrieval.loaders.limits import LoadLimits
from tests.conftest import need_tesseract, scanned_pdf


@pytest.fixture(scope="module")
def tesseract() -> None:
    """Skip locally without tesseract; CI installs it, so there its absence fails."""
    need_tesseract()


def test_a_scanned_pdf_is_read_with_ocr(tesseract: None) -> None:
    data = scanned_pdf([["Photosynthesis converts light energy into chemical energy."],
                        ["Mitochondria are the powerhouse of the cell."]])
    with pytest.raises(NoTextLayerError):  # the image really has no text layer
        load_document(data, "scan.pdf", limits=LoadLimits(ocr=False))
    progress: list[tuple[int, int]] = []
    document = load_document(data, "scan.pdf", on_ocr_page=lambda done, total: progress.append((done, total)))
    assert document.metadata["ocr"] == "true" and document.metadata["ocr_pages"] == "2"
    assert progress == [(1, 2), (2, 2)]
    by_page = {s.position: s.text.lower() for s in document.sections}
    assert "photosynthesis" in by_page[1] and "mitochondria" in by_page[2]


def test_single_scanned_pages_inside_a_text_pdf_are_read(tesseract: None) -> None:
    data = scanned_pdf([None, ["Die Wärmeleitung im Festkörper folgt dem Fourierschen Gesetz."]])
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


def test_ocr_can_be_limited_per_file(tesseract: None) -> None:
    data = scanned_pdf([["First scanned page about graphs."], ["Second scanned page about trees."]])
    document = load_document(data, "scan.pdf", limits=LoadLimits(ocr_max_pages=1))
    assert document.metadata["ocr_pages"] == "1"
    assert [s.position for s in document.sections] == [1]
