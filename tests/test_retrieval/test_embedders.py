"""Embedders: a tiny locally built sentence-transformers model through the real code path, and the fake."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from retrieval.embedders import HashingEmbedder, SentenceTransformerEmbedder
from retrieval.types import Embedder


def test_prefixes_reach_the_model(tiny_model_dir: Path) -> None:
    e5 = SentenceTransformerEmbedder(str(tiny_model_dir), query_prefix="query: ", passage_prefix="passage: ",
                                     batch_size=2)
    plain = SentenceTransformerEmbedder(str(tiny_model_dir))
    assert isinstance(e5, Embedder)
    texts = ["hello world", "light and energy", "sorting an array"]
    queries = e5.embed_queries(texts)
    passages = e5.embed_passages(texts)
    assert queries.dtype == np.float32 and queries.shape == (3, e5.dimension)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    assert np.allclose(queries, plain.embed_passages([f"query: {t}" for t in texts]), atol=1e-5)
    assert np.allclose(passages, plain.embed_passages([f"passage: {t}" for t in texts]), atol=1e-5)
    assert not np.allclose(queries, passages)
    assert e5.model_id != plain.model_id  # different vectors, different id: re-index on change
    assert e5.embed_queries([]).shape == (0, e5.dimension)


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashingEmbedder(64)
    a = embedder.embed_passages(["Mitochondria produce ATP", ""])
    b = HashingEmbedder(64).embed_queries(["Mitochondria produce ATP"])
    assert np.array_equal(a[0], b[0])
    assert abs(float(np.linalg.norm(a[0])) - 1.0) < 1e-6 and not a[1].any()
    assert isinstance(embedder, Embedder)


def test_import_retrieval_is_cheap() -> None:
    code = ("import sys, retrieval.search, retrieval.evaluate, retrieval.embedders, retrieval.loaders; "
            "print(any(m in sys.modules for m in ('torch', 'sentence_transformers', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_default_model_is_the_offline_package() -> None:
    from retrieval.embedders import DEFAULT_MODEL_ID, default_model_path

    path = Path(default_model_path())
    assert (path / "modules.json").exists() and (path / "model.safetensors").exists()
    embedder = SentenceTransformerEmbedder()
    assert embedder.model_id == DEFAULT_MODEL_ID and embedder.languages == ("en",)
    assert embedder._model is None  # nothing loaded until the first embedding


def test_direct_query_path_matches_encode(tiny_model_dir: Path) -> None:
    embedder = SentenceTransformerEmbedder(str(tiny_model_dir), query_prefix="query: ")
    texts = ["short", "a much longer question about sorting arrays " * 40]
    one_by_one = np.vstack([embedder.embed_queries([t]) for t in texts])  # direct forward pass
    model = embedder.load()
    batched = model.encode([f"query: {t}" for t in texts] * 3, normalize_embeddings=True)[:2]
    assert np.allclose(one_by_one, batched, atol=1e-5)
    assert not model.training
