"""Shared helpers for the retrieval benchmarks: where the evaluation data lives, quiet logging."""
from __future__ import annotations

import logging
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_EVAL = Path(os.environ.get("COURSEBOTS_EVAL_DIR", REPO.parent / "shared" / "eval"))


def quiet() -> None:
    """Warnings only (bm25s and transformers are chatty at INFO/DEBUG)."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("bm25s", "sentence_transformers", "transformers", "pypdf"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")
