"""Untrusted files: bombs are refused while unpacking, and a parser that dies takes only its child process along."""
from __future__ import annotations

import io
import os
import zipfile

import pytest

from retrieval.errors import ArchiveBombError, IngestError
from retrieval.loaders import LoadLimits, load_document
from retrieval.loaders.pdf import render_scale
from retrieval.loaders.sandbox import ParserCrashError, SandboxLimits, load_document_isolated
from tests.test_retrieval.hostile_files import MIB, bomb_pdf

HOOK = "tests.test_retrieval.hostile_files:"
LOW = LoadLimits(max_uncompressed_bytes=32_000_000)


@pytest.mark.parametrize("layers", [1, 2])
def test_pdf_bomb_is_reported_as_a_bomb_not_a_scan(layers: int) -> None:
    data = bomb_pdf(64 * MIB, layers=layers)
    assert len(data) < 300_000  # a small upload...
    with pytest.raises(IngestError) as caught:
        load_document(data, "lecture.pdf", limits=LOW)  # ...refused while inflating, before pdfium sees it
    assert caught.value.code == "archive_bomb"
    assert "expands to more than 32 MB when unpacked" in caught.value.message
    assert "scan" not in caught.value.message


def test_pdf_below_the_unpack_limit_loads() -> None:
    document = load_document(bomb_pdf(8 * MIB), "padded.pdf", limits=LOW)
    assert "Osmosis moves water" in document.text


def test_docx_bomb_message_names_the_limit() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", b" " * (64 * MIB))  # also read (in part) while detecting the type
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(ArchiveBombError) as caught:
        load_document(buffer.getvalue(), "notes.docx", limits=LOW)
    assert "more than 32 MB when unpacked" in caught.value.message


def test_ocr_render_scale_caps_the_pixels_of_a_page() -> None:
    a4 = render_scale(595, 842, 25_000_000)
    assert a4 == pytest.approx(300 / 72)  # an ordinary page is read at 300 dpi
    poster = render_scale(14400, 14400, 25_000_000)  # the largest page a PDF may declare
    assert (14400 * poster) ** 2 <= 25_000_000


def test_a_bomb_in_the_child_is_still_a_bomb() -> None:
    with pytest.raises(IngestError) as caught:
        load_document_isolated(bomb_pdf(64 * MIB), "lecture.pdf", limits=LOW,
                               sandbox=SandboxLimits(max_memory_bytes=512 * MIB, max_cpu_seconds=30))
    assert caught.value.code == "archive_bomb" and not isinstance(caught.value, ParserCrashError)


def test_the_child_reads_an_ordinary_file_in_another_process() -> None:
    document = load_document_isolated(b"# Osmosis\n\nWater moves across membranes.", "notes.md")
    assert "Water moves across membranes." in document.text and document.sections[0].heading_path == ("Osmosis",)
    other = load_document_isolated(b"x", "a.txt", loader=HOOK + "pid_text")
    assert other.text != f"parsed in process {os.getpid()}"


def test_a_child_past_its_memory_limit_reports_out_of_memory() -> None:
    with pytest.raises(ParserCrashError) as caught:
        load_document_isolated(b"x", "a.txt", sandbox=SandboxLimits(max_memory_bytes=300_000_000, max_cpu_seconds=30),
                               loader=HOOK + "hog")
    assert caught.value.code == "parse_out_of_memory"
    assert "run out of memory" in caught.value.message and "300 MB" in caught.value.message


def test_a_bomb_past_the_memory_limit_without_the_unpack_check_is_out_of_memory() -> None:
    with pytest.raises(ParserCrashError) as caught:  # the unpack check off: the OS limit still holds
        load_document_isolated(bomb_pdf(320 * MIB), "lecture.pdf", limits=LoadLimits(max_uncompressed_bytes=1 << 40),
                               sandbox=SandboxLimits(max_memory_bytes=256 * MIB, max_cpu_seconds=60))
    assert caught.value.kind == "memory"


def test_a_child_past_its_cpu_limit_reports_too_long() -> None:
    with pytest.raises(ParserCrashError) as caught:
        load_document_isolated(b"x", "a.txt", sandbox=SandboxLimits(max_cpu_seconds=1), loader=HOOK + "spin")
    assert caught.value.code == "parse_timeout"
    assert "takes too long to read" in caught.value.message and "1 seconds" in caught.value.message


@pytest.mark.parametrize("loader, kind", [("segfault", "crash"), ("killed", "memory")])
def test_a_child_that_dies_raises_and_this_process_lives(loader: str, kind: str) -> None:
    with pytest.raises(ParserCrashError) as caught:
        load_document_isolated(b"x", "a.txt", loader=HOOK + loader)
    assert caught.value.kind == kind
