"""Loaders turn real file formats into sections with pages, slides and headings a citation can point to."""
from __future__ import annotations

from typing import Callable

from retrieval.loaders import load_document
from retrieval.loaders.cleanup import remove_repeated_lines
from retrieval.types import Locator


def test_pdf_pages_keep_numbers_and_drop_repeated_headers(make_pdf: Callable[..., bytes]) -> None:
    pages = [[f"Topic {i}: the mitochondria is the powerhouse of the cell number {i}."] for i in range(1, 5)]
    doc = load_document(make_pdf(pages, header="Biology 101 - Winter term", footer=True), "bio.pdf")
    assert doc.locator is Locator.PAGE
    assert [s.position for s in doc.sections] == [1, 2, 3, 4]
    assert "Topic 3" in doc.sections[2].text
    assert "Biology 101" not in doc.text
    assert "Page 2 of 4" not in doc.text
    assert doc.page_count == 4


def test_repeated_lines_are_kept_on_short_documents() -> None:
    pages = ["Header\nBody one", "Header\nBody two"]
    assert remove_repeated_lines(pages) == pages


def test_pdf_of_identical_pages_loads_with_its_text(make_pdf: Callable[..., bytes]) -> None:
    # Seen with real files: every page the same (a handout printed four times) was rejected as "no text".
    page = ["Klausurinformation: Die Klausur findet am 12. Februar in Hörsaal 3 statt.", "Dauer: 90 Minuten."]
    doc = load_document(make_pdf([page] * 4, footer=True), "klausur.pdf")
    assert [s.position for s in doc.sections] == [1, 2, 3, 4]
    assert all("Hörsaal 3" in s.text for s in doc.sections)


def test_repeated_agenda_slides_keep_their_text_while_headers_go(make_pdf: Callable[..., bytes]) -> None:
    agenda = ["Agenda", "Sorting algorithms and their complexity"]
    pages = [agenda, ["Quicksort partitions the array around a pivot."], agenda,
             ["Mergesort splits the array and merges sorted halves."], agenda, agenda]
    doc = load_document(make_pdf(pages, header="Algorithms - Winter term", footer=True), "deck.pdf")
    assert "Algorithms - Winter term" not in doc.text
    assert [s.position for s in doc.sections if "Agenda" in s.text] == [1, 3, 5, 6]
    assert "Quicksort partitions" in doc.sections[1].text


def test_clean_up_never_empties_a_document() -> None:
    pages = ["Same line\n1", "Same line\n2", "Same line\n3"]
    assert [p.split("\n")[0] for p in remove_repeated_lines(pages)] == ["Same line"] * 3


def test_docx_headings_become_paths_and_tables_rows(docx_bytes: bytes) -> None:
    doc = load_document(docx_bytes, "notes.docx")
    paths = [s.heading_path for s in doc.sections]
    assert ("Introduction",) in paths
    assert ("Introduction", "Details") in paths
    assert ("Summary",) in paths
    table = next(s for s in doc.sections if s.kind == "table")
    assert table.text.splitlines() == ["Pigment | Colour | Peak",
                                       "Pigment: Chlorophyll a | Colour: green | Peak: 430 nm"]
    assert table.heading_path == ("Introduction", "Details")


def test_pptx_slides_titles_and_notes(pptx_bytes: bytes) -> None:
    doc = load_document(pptx_bytes, "algo.pptx")
    assert doc.locator is Locator.SLIDE
    body = [s for s in doc.sections if s.kind == "body"]
    assert [(s.position, s.heading_path) for s in body] == [(1, ("Sorting",)), (2, ("Searching",))]
    notes = [s for s in doc.sections if s.kind == "notes"]
    assert [(n.position, n.text) for n in notes] == [(1, "Mention worst case.")]


def test_html_sections_follow_headings_and_skip_scripts() -> None:
    html = (b"<html><head><title>Course page</title><script>var x = 1;</script></head><body>"
            b"<h1>Week 1</h1><p>Sets and relations.</p><h2>Exercise</h2><p>Prove it.</p>"
            b"<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table></body></html>")
    doc = load_document(html, "week1.html")
    assert doc.metadata["html_title"] == "Course page"
    assert [s.heading_path for s in doc.sections] == [("Week 1",), ("Week 1", "Exercise")]
    assert "var x" not in doc.text
    assert "a | b\na: 1 | b: 2" in doc.sections[1].text


def test_markdown_front_matter_headings_and_markup() -> None:
    text = ("---\ntitle: \"Suche\"\n---\n\n# Tiefensuche\n\nDie **Tiefensuche** nutzt einen [Stack](http://x).\n\n"
            "## Beispiel {#bsp .unnumbered}\n\n![Baum](tree.png){width=\"50%\"}\n\n```\ncode stays\n```\n")
    doc = load_document(text.encode(), "suche.md")
    assert doc.metadata["md_title"] == "Suche"
    assert doc.sections[0].heading_path == ("Tiefensuche",)
    assert doc.sections[0].text == "Die Tiefensuche nutzt einen Stack."
    assert doc.sections[1].heading_path == ("Tiefensuche", "Beispiel")
    assert "width" not in doc.sections[1].text and "code stays" in doc.sections[1].text
    assert doc.language == "de"


def test_plain_text_in_cp1252_is_decoded() -> None:
    doc = load_document("Größe und Gewicht sind wichtig für die Übung.".encode("cp1252"), "notes.txt")
    assert "Größe" in doc.text
    assert doc.media_type == "text/plain"


def test_mislabelled_upload_is_read_by_its_real_type(make_pdf: Callable[..., bytes], docx_bytes: bytes) -> None:
    as_docx = load_document(make_pdf([["Really a PDF about enzymes."]]), "lecture.docx",
                            media_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert as_docx.media_type == "application/pdf" and "enzymes" in as_docx.text
    as_pdf = load_document(docx_bytes, "notes.pdf", media_type="application/pdf")
    assert as_pdf.media_type.endswith("wordprocessingml.document")


def test_same_bytes_same_document_id(docx_bytes: bytes) -> None:
    assert load_document(docx_bytes, "a.docx").document_id == load_document(docx_bytes, "b.docx").document_id


def test_headings_without_body_are_still_text() -> None:
    doc = load_document(b"<html><body><h1>Title</h1><h2>Part</h2><p>Body.</p><h2>End</h2></body></html>", "h.html")
    assert [(s.kind, s.text) for s in doc.sections] == [("title", "Title"), ("body", "Body."), ("title", "End")]


def test_one_word_pdf_has_a_text_layer(make_pdf: Callable[..., bytes]) -> None:
    assert load_document(make_pdf([["Test"]]), "short.pdf").text == "Test"
