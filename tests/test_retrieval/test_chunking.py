"""Chunks stay within the token budget, start at pages and headings, overlap when cut, and keep stable ids."""
from __future__ import annotations

from retrieval.chunking import ChunkingConfig, chunk_document, chunk_faq, count_tokens
from retrieval.types import ChunkKind, Document, Locator, Section


def _sentences(prefix: str, n: int, words: int = 10) -> str:
    return " ".join(f"{prefix} sentence {i} " + " ".join(["word"] * (words - 3)) + "." for i in range(n))


def test_long_section_is_cut_within_budget_with_overlap() -> None:
    doc = Document("d1", "Long.txt", (Section(_sentences("Alpha", 30)),))
    chunks = chunk_document(doc, ChunkingConfig(max_tokens=50, overlap_tokens=10, min_tokens=5))
    assert len(chunks) > 5
    assert all(count_tokens(c.text) <= 50 for c in chunks)
    for first, second in zip(chunks, chunks[1:]):
        last_sentence = first.text.split(". ")[-1]
        assert second.text.startswith(last_sentence.rstrip(".")), "the next chunk repeats the tail"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_every_page_is_a_boundary_so_a_citation_names_the_page_of_its_text() -> None:
    doc = Document("d2", "Slides.pdf", (
        Section(_sentences("One", 3), position=1), Section(_sentences("Two", 3), position=2),
        Section(_sentences("Short", 1, words=15), position=3), Section(_sentences("Four", 3), position=4)),
        locator=Locator.PAGE)
    chunks = chunk_document(doc, ChunkingConfig(max_tokens=100, overlap_tokens=0, min_tokens=20))
    # A short page (15 words) is its own chunk: merged into page 4, its citation would name page 3 for page 4's text.
    assert [(c.position, c.position_end) for c in chunks] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert chunks[2].text.startswith("Short sentence 0")
    assert chunks[0].citation_label == "Slides.pdf, page 1"
    assert chunks[3].citation_label == "Slides.pdf, page 4"


def test_short_sections_of_an_unpaged_document_still_merge() -> None:
    doc = Document("d3", "Notes.md", (
        Section(_sentences("Intro", 1, words=10), heading_path=("Intro",)),
        Section(_sentences("Body", 3), heading_path=("Body",))), locator=Locator.SECTION)
    chunks = chunk_document(doc, ChunkingConfig(max_tokens=100, overlap_tokens=0, min_tokens=20))
    assert len(chunks) == 1 and chunks[0].text.startswith("Intro sentence 0")


def test_a_title_only_page_heads_the_next_page_and_the_citation_names_the_text_page() -> None:
    doc = Document("d2", "Slides.pdf", (
        Section(_sentences("One", 3), position=1), Section("Kapitel 3: Vererbung", position=2),
        Section(_sentences("Four", 3), position=3)), locator=Locator.PAGE)
    chunks = chunk_document(doc, ChunkingConfig(max_tokens=100, overlap_tokens=0, min_tokens=20))
    assert [(c.position, c.position_end) for c in chunks] == [(1, 1), (3, 3)]
    assert chunks[1].heading_path == ("Kapitel 3: Vererbung",) and chunks[1].text.startswith("Four")
    assert chunks[1].citation_label == "Slides.pdf, page 3"


def test_headings_are_boundaries_and_paths_are_kept() -> None:
    doc = Document("d3", "Notes.docx", (
        Section(_sentences("Intro", 3), heading_path=("1 Intro",)),
        Section(_sentences("Method", 3), heading_path=("2 Methods",)),
        Section(_sentences("Data", 3), heading_path=("2 Methods", "2.1 Data"))))
    chunks = chunk_document(doc, ChunkingConfig(max_tokens=200, overlap_tokens=0, min_tokens=20))
    assert [c.heading_path for c in chunks] == [("1 Intro",), ("2 Methods",), ("2 Methods", "2.1 Data")]
    assert chunks[2].citation_label == "Notes.docx, 2.1 Data"


def test_ids_are_content_hashes() -> None:
    base = (Section(_sentences("Stable", 3), heading_path=("A",)), Section(_sentences("Other", 3), heading_path=("B",)))
    cfg = ChunkingConfig(max_tokens=100, overlap_tokens=0, min_tokens=10)
    first = chunk_document(Document("d4", "x.md", base), cfg)
    again = chunk_document(Document("d4", "x.md", base), cfg)
    edited = chunk_document(Document("d4", "x.md", (base[0], Section("Changed text here.", heading_path=("B",)))), cfg)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert first[0].chunk_id == edited[0].chunk_id and first[1].chunk_id != edited[1].chunk_id
    duplicate = chunk_document(Document("d5", "y.md", (base[0], base[0])), cfg)
    assert len({c.chunk_id for c in duplicate}) == len(duplicate)


def test_language_is_detected_per_chunk() -> None:
    doc = Document("d6", "mixed.md", (
        Section("Die Katze sitzt auf dem Baum und ist nicht allein, weil sie den Hund sieht.", heading_path=("A",)),
        Section("The cat is on the tree and it is not alone because the dog is there.", heading_path=("B",))))
    chunks = chunk_document(doc, ChunkingConfig(min_tokens=1))
    assert [c.language for c in chunks] == ["de", "en"]


def test_faq_entry_is_one_chunk() -> None:
    chunk = chunk_faq("faq-1", "When is the exam?", "On 3 March in room A.")
    assert chunk.kind is ChunkKind.FAQ and chunk.text == "When is the exam?\nOn 3 March in room A."
