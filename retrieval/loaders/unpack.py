"""Decompression limits: a PDF's Flate streams are inflated in bounded steps, counted, before pdfium sees them.

A few megabytes of deflated zeros inflate to gigabytes; pdfium would hold all of it in memory. Here every
``/FlateDecode`` stream (also chains of them) is inflated one megabyte at a time and thrown away, so checking
costs no memory; the file is refused as soon as the unpacked total passes the limit.
"""
from __future__ import annotations

import logging
import re
import zlib

from retrieval.errors import IngestError

log = logging.getLogger(__name__)

_STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]{0,512}\]|/[A-Za-z0-9]{1,64})")
_NAME = re.compile(rb"/([A-Za-z0-9]{1,64})")
_IMAGE = re.compile(rb"/Subtype\s*/Image\b")
_FLATE = (b"FlateDecode", b"Fl")
_HEADER_WINDOW = 8192  # the stream's dictionary precedes the keyword, after "N G obj"
_IN_STEP = 64 * 1024
_OUT_STEP = 1024 * 1024
MB = 1_000_000  # decimal megabytes, as in every limit and message of the product


class UnpackBombError(IngestError):
    """The file unpacks to more than the limit (a decompression bomb, or an absurdly padded document)."""

    def __init__(self, limit_bytes: int) -> None:
        """Say the limit in MB and what the teacher can do."""
        super().__init__("archive_bomb", unpack_message(limit_bytes))


def unpack_message(limit_bytes: int) -> str:
    """The teacher's message for a file that expands beyond ``limit_bytes`` when unpacked."""
    return (f"This file expands to more than {limit_bytes // MB} MB when unpacked, so it was rejected for safety "
            "(a small file hiding a huge compressed part). If it is a real document, save it again from its "
            "program or print it to a new PDF, and upload that.")


class _TooBig(Exception):
    """Internal: the budget is used up."""


def _push(decoders: list["zlib._Decompress"], layer: int, chunk: bytes, budget: int) -> int:
    """Feed ``chunk`` through decoder ``layer`` and the ones after it; returns the bytes the last one produced."""
    decoder = decoders[layer]
    produced = 0
    while not decoder.eof:
        out = decoder.decompress(chunk, _OUT_STEP)
        chunk = decoder.unconsumed_tail
        if layer + 1 < len(decoders):
            produced += _push(decoders, layer + 1, out, budget - produced) if out else 0
        else:
            produced += len(out)
        if produced > budget:
            raise _TooBig()
        if not out and not chunk:
            break
    return produced


def _inflated_size(data: bytes, start: int, end: int, layers: int, budget: int) -> int:
    """Bytes the stream at ``data[start:end]`` inflates to through ``layers`` Flate filters (stops at budget)."""
    decoders = [zlib.decompressobj() for _ in range(layers)]
    total = 0
    for offset in range(start, end, _IN_STEP):
        total += _push(decoders, 0, data[offset:min(end, offset + _IN_STEP)], budget - total)
        if decoders[0].eof:
            break
    return total


def _flate_layers(header: bytes) -> int:
    """How many Flate filters the stream dictionary names (0 when any other filter is involved or none)."""
    match = _FILTER.search(header)
    if match is None:
        return 0
    names = _NAME.findall(match.group(1))
    return len(names) if names and all(n in _FLATE for n in names) else 0


def check_pdf_streams(data: bytes, limit_bytes: int) -> int:
    """Raise :class:`UnpackBombError` when the PDF's Flate streams unpack to more than ``limit_bytes``.

    Images count one by one (a scan has many large ones, read only for OCR); everything else counts together.
    Returns the unpacked size of the non-image streams.
    """
    total = 0
    position = 0
    while True:
        match = _STREAM.search(data, position)
        if match is None:
            return total
        start = match.end()
        end = data.find(b"endstream", start)
        end = len(data) if end < 0 else end
        position = max(end, start)
        window = data[max(0, match.start() - _HEADER_WINDOW):match.start()]
        header = window[window.rfind(b"obj") + 1:] if b"obj" in window else window[-2048:]
        layers = _flate_layers(header)
        if not layers:
            continue
        image = _IMAGE.search(header) is not None
        budget = limit_bytes if image else limit_bytes - total
        try:
            size = _inflated_size(data, start, end, layers, budget)
        except _TooBig:
            log.warning("PDF stream at byte %d unpacks beyond %d MB", start, limit_bytes // MB)
            raise UnpackBombError(limit_bytes) from None
        except zlib.error:  # a damaged stream: pdfium decides what to make of it
            continue
        if not image:
            total += size
