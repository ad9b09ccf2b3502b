"""Which PDFs of the ingestion folder are tagged, have Table / Figure elements, and what the loader makes of them.

Usage: python bench/retrieval/tagged_pdfs.py [INGESTION_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

from common import SHARED_EVAL

from retrieval.errors import IngestError
from retrieval.loaders import LoadLimits, load_document
from retrieval.loaders.pdf_tables import is_tagged, structure_types


def main() -> None:
    """Print one line per tagged PDF and a summary line."""
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else SHARED_EVAL / "ingestion"
    import pypdfium2 as pdfium

    counts = {"pdfs": 0, "tagged": 0, "with Table": 0, "with Figure": 0, "table sections": 0}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if not data[:1024].lstrip().startswith(b"%PDF"):
            continue
        counts["pdfs"] += 1
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError:
            continue
        try:
            if not is_tagged(pdf.raw):
                continue
            kinds: set[str] = set()
            for i in range(len(pdf)):
                page = pdf[i]  # held while pdfium reads it: a temporary would be closed too early
                kinds |= structure_types(page.raw)
                page.close()
        finally:
            pdf.close()
        try:
            sections = load_document(data, path.name, limits=LoadLimits(ocr=False)).sections
        except IngestError as exc:
            print(f"{path.relative_to(root)}: {exc.code}")
            continue
        tables = sum(1 for s in sections if s.kind == "table")
        counts["tagged"] += 1
        counts["with Table"] += "Table" in kinds
        counts["with Figure"] += "Figure" in kinds
        counts["table sections"] += tables
        print(f"{path.relative_to(root)}: Table {'Table' in kinds}, Figure {'Figure' in kinds}, "
              f"{tables} table sections")
    print(", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
