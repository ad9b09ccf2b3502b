"""Hostile inputs built on the fly (never stored): PDF decompression bombs and parsers that misbehave in the child."""
from __future__ import annotations

import ctypes
import os
import signal
import zlib
from typing import Any

from retrieval.loaders import load_document
from retrieval.types import Document, Section

MIB = 1024 * 1024


def _deflate(head: bytes, inflated: int, fill: bytes = b" ") -> bytes:
    """``head`` followed by ``inflated`` bytes of ``fill``, deflated without ever holding them in memory."""
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(head)]
    block = fill * MIB
    left = inflated
    while left > 0:
        parts.append(compressor.compress(block[:min(left, MIB)]))
        left -= MIB
    parts.append(compressor.flush())
    return b"".join(parts)


def bomb_pdf(inflated: int, layers: int = 1) -> bytes:
    """A one-page PDF whose content stream inflates to ``inflated`` bytes (``layers`` Flate filters deep)."""
    stream = _deflate(b"BT /F1 12 Tf 72 720 Td (Osmosis moves water across membranes) Tj ET\n", inflated)
    for _ in range(layers - 1):
        stream = zlib.compress(stream, 9)
    filters = b"[" + b" ".join([b"/FlateDecode"] * layers) + b"]" if layers > 1 else b"/FlateDecode"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d /Filter %s >>\nstream\n" % (len(stream), filters) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# Loaders for the sandbox's test hook (``module:function`` with load_document's signature); run in the child.

def spin(data: bytes, filename: str, *args: Any, **kwargs: Any) -> Document:
    """A parse that never ends (burns CPU)."""
    while True:
        pass


def hog(data: bytes, filename: str, *args: Any, **kwargs: Any) -> Document:
    """A parse that wants far more memory than any limit allows."""
    chunks = []
    while True:
        chunks.append(bytearray(64 * MIB))


def segfault(data: bytes, filename: str, *args: Any, **kwargs: Any) -> Document:
    """A parser bug in C: the child dies of SIGSEGV."""
    ctypes.string_at(0)
    raise AssertionError("unreachable")


def killed(data: bytes, filename: str, *args: Any, **kwargs: Any) -> Document:
    """The child is killed from outside (as the kernel's OOM killer would)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def pid_text(data: bytes, filename: str, *args: Any, **kwargs: Any) -> Document:
    """Parses fine, and says which process parsed it."""
    return Document(document_id="x", title=filename, sections=(Section(text=f"parsed in process {os.getpid()}"),))


def by_name(data: bytes, filename: str, *args: Any, **kwargs: Any) -> Document:
    """Misbehave as the file's name says (``segfault-*``, ``spin-*``, ``hog-*``), else parse for real."""
    for name, misbehave in (("segfault", segfault), ("spin", spin), ("hog", hog)):
        if filename.startswith(name):
            return misbehave(data, filename)
    return load_document(data, filename, *args, **kwargs)
