"""Every bad upload fails with a typed error and a message a teacher can act on; others still load."""
from __future__ import annotations

import io
import zipfile
from typing import Callable

import pytest

from retrieval.errors import (ArchiveBombError, CorruptDocumentError, EmptyDocumentError,
                              EncryptedDocumentError, FileTooLargeError, IngestError, NoTextLayerError,
                              UnsupportedTypeError)
from retrieval.loaders import LoadLimits, load_document, load_documents


def _encrypted(pdf: bytes) -> bytes:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdf(make_pdf: Callable[..., bytes]) -> None:
    with pytest.raises(EncryptedDocumentError) as info:
        load_document(_encrypted(make_pdf([["secret text"]])), "exam.pdf")
    assert info.value.code == "encrypted"
    assert "password" in info.value.message


def test_pdf_without_text_layer_says_scan() -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.rect(100, 100, 300, 300, fill=1)  # only graphics, like a scanned page
    pdf.showPage()
    pdf.save()
    with pytest.raises(NoTextLayerError) as info:
        load_document(buffer.getvalue(), "scan.pdf", limits=LoadLimits(ocr=False))  # as without tesseract
    assert "scan" in info.value.message


@pytest.mark.parametrize("data", [b"", b"   \n\t "])
def test_empty_file(data: bytes) -> None:
    with pytest.raises(EmptyDocumentError):
        load_document(data, "empty.txt")


def test_empty_markdown_text_is_empty() -> None:
    with pytest.raises(EmptyDocumentError):
        load_document(b"---\ntitle: x\n---\n\n", "empty.md")


def test_corrupt_pdf(make_pdf: Callable[..., bytes]) -> None:
    with pytest.raises(CorruptDocumentError) as info:
        load_document(b"%PDF-1.7\n" + b"\x00garbage" * 100, "broken.pdf")
    assert info.value.code == "corrupt"


def test_corrupt_docx() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<not really xml")
    with pytest.raises(CorruptDocumentError):
        load_document(buffer.getvalue(), "broken.docx")


def test_truncated_zip_is_corrupt(docx_bytes: bytes) -> None:
    with pytest.raises(IngestError) as info:
        load_document(docx_bytes[: len(docx_bytes) // 2], "cut.docx")
    assert info.value.code in ("corrupt", "unsupported_type")


def test_zip_bomb_is_rejected_before_unpacking(docx_bytes: bytes) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx_bytes)) as source, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            archive.writestr(item, source.read(item))
        archive.writestr("word/media/huge.bin", b"\x00" * 20_000_000)
    with pytest.raises(ArchiveBombError) as info:
        load_document(buffer.getvalue(), "bomb.docx")
    assert info.value.code == "archive_bomb"
    with pytest.raises(ArchiveBombError):
        load_document(docx_bytes, "ok.docx", limits=LoadLimits(max_uncompressed_bytes=1000))


@pytest.mark.parametrize("data,name", [(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "slide.png"),
                                       (b"\xd0\xcf\x11\xe0" + b"\x00" * 50, "old.doc"),
                                       (b"\x00\x01\x02binary" * 10, "data.bin")])
def test_unsupported_types(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        load_document(data, name)
    assert info.value.code == "unsupported_type"


def test_zip_that_is_not_a_document() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedTypeError):
        load_document(buffer.getvalue(), "material.zip")


def test_too_large() -> None:
    with pytest.raises(FileTooLargeError) as info:
        load_document(b"x" * 2_000_001, "big.txt", limits=LoadLimits(max_bytes=1_000_000))
    assert "limit is 1 MB" in info.value.message


def test_a_bad_file_never_stops_the_others(make_pdf: Callable[..., bytes]) -> None:
    results = load_documents([(b"", "empty.txt"), (b"%PDF-1.4 broken", "bad.pdf"),
                              (make_pdf([["Good page about cells."]]), "good.pdf"), (b"fine text", "a.txt")])
    assert [type(r).__name__ for r in results] == ["EmptyDocumentError", "CorruptDocumentError",
                                                   "Document", "Document"]
