"""What the bot reads is what the page says: ligatures, hyphens, page furniture and the page a citation names."""
from __future__ import annotations

import io
import os
import re
from typing import Callable

import pytest

from retrieval.chunking import ChunkingConfig, chunk_document
from retrieval.loaders import load_document
from retrieval.loaders.cleanup import normalise_text, remove_repeated_lines
from retrieval.loaders.words import Lexicon, restore_words


def _pdf_with_unmapped_ligatures(lines: list[str]) -> bytes:
    """A PDF drawn with real ligature glyphs (reportlab's bundled Vera has fi and fl) whose ToUnicode map lacks them.

    That is how many real PDFs come: pdfium then drops the glyph ("Die Klausur ndet statt") or reports U+FFFE.
    """
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("VeraLig", os.path.join(os.path.dirname(reportlab.__file__), "fonts", "Vera.ttf")))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pageCompression=0)  # uncompressed, so that the ToUnicode map can be edited below
    pdf.setFont("VeraLig", 12)
    for number, line in enumerate(lines):
        pdf.drawString(72, 760 - 16 * number, line)
    pdf.showPage()
    pdf.save()
    data = buffer.getvalue()
    for ligature in (b"<FB01>", b"<FB02>"):
        assert ligature in data
        data = data.replace(ligature, b"<0000>")  # same length: the cross-reference offsets stay valid
    return data


def test_unmapped_ligature_glyphs_in_a_pdf_are_restored() -> None:
    data = _pdf_with_unmapped_ligatures(["Die Klausur \ufb01ndet am 18. Februar statt.",
                                         "Die Aufgaben \ufb01nden Sie auf der Seite des Kurses.",
                                         "Ein \ufb02aches Modell hat wenige Parameter."])
    text = load_document(data, "klausur.pdf").text
    assert "Die Klausur findet am 18. Februar statt." in text
    assert "finden Sie" in text and "flaches Modell" in text


@pytest.mark.parametrize(("raw", "expected"), [
    ("Die Klausur \ufffendet am 18. Februar statt.", "Die Klausur findet am 18. Februar statt."),
    ("Fehler identi\ufffezieren und beheben", "Fehler identifizieren und beheben"),
    ("Tre\ufffeen Sie pünktlich ein.", "Treffen Sie pünktlich ein."),
    ("Grundlagen der Infe\uffferenzstatistik", "Grundlagen der Inferenzstatistik"),
    ("Bayes\ufffeInferenz mit Stan", "Bayes-Inferenz mit Stan"),
    ("gepu\ufffeerte Ein- und Ausgabe", "gepufferte Ein- und Ausgabe"),
    ("Benutzerober\ufffeächen gestalten", "Benutzeroberflächen gestalten"),
    ("Die Übungsauf\x02gaben liegen im Kurs.", "Die Übungsaufgaben liegen im Kurs."),
    ("das Collections\x02Framework nutzen", "das Collections-Framework nutzen"),
    ("in object\x02oriented languages", "in object-oriented languages"),
    ("pypdf: Die Klausur \x00ndet statt.", "pypdf: Die Klausur findet statt."),
    ("Presentation forms: \ufb01nden, \ufb00", "Presentation forms: finden, ff"),
])
def test_marks_pdfium_and_pypdf_leave_become_the_word(raw: str, expected: str) -> None:
    assert normalise_text(raw, Lexicon("de")) == expected


def test_hyphens_at_line_ends_join_only_into_words() -> None:
    text = "Die Infor-\nmation über Hardware-\nund Software steht im Skript.\nSiehe Collections-\nFramework."
    assert normalise_text(text) == ("Die Information über Hardware- und Software steht im Skript.\n"
                                    "Siehe Collections-Framework.")


def test_the_documents_own_words_decide_a_rare_compound() -> None:
    # "Zustandsübergangsgraph" is in no frequency list; the document spells it elsewhere.
    lexicon = Lexicon.from_texts(["Der Zustandsübergangsgraph zeigt alle Zustände."], "de")
    assert restore_words("Zustands\x02übergangsgraph", lexicon) == "Zustandsübergangsgraph"
    assert restore_words("Zustands\x02übergangsgraph", Lexicon("de")) == "Zustandsübergangsgraph"
    assert restore_words("Self\x02Service", lexicon) == "Self-Service"


def test_a_pdf_line_end_hyphen_keeps_compounds_and_joins_words(make_pdf: Callable[..., bytes]) -> None:
    data = make_pdf([["Die Infor-", "mation steht im Skript: Hardware-", "und Software, Map-", "Interface."]])
    text = load_document(data, "skript.pdf").text
    assert "Information steht" in text
    assert "Hardware- und Software" in text and "Map-Interface" in text


_SIDEBAR = ["Einleitung", "Deskriptive Statistik", "Inferenzstatistik", "Regression"]
_BODIES = [("Lagemaße", "Der Mittelwert fasst eine Stichprobe in einer Zahl zusammen."),
           ("Streuung", "Die Varianz misst, wie weit die Werte um den Mittelwert liegen."),
           ("Schätzer", "Ein Schätzer ist erwartungstreu, wenn sein Erwartungswert stimmt."),
           ("Tests", "Der t-Test vergleicht zwei Mittelwerte unter Normalverteilung."),
           ("Modelle", "Die lineare Regression erklärt eine Größe durch andere."),
           ("Aufgabe 1", "Berechnen Sie den Median der Messreihe aus der Übung.")]


def test_furniture_is_dropped_wherever_it_stands_on_the_page(make_pdf: Callable[..., bytes]) -> None:
    # Beamer: pdfium reads the navigation sidebar between the frame title and the body.
    pages = [[title, *_SIDEBAR, body, "Statistik II - Sommersemester"] for title, body in _BODIES]
    doc = load_document(make_pdf(pages, footer=True), "statistik.pdf")
    assert [s.text.splitlines() for s in doc.sections] == [[title, body] for title, body in _BODIES]


def test_furniture_removal_keeps_repeated_pages_and_template_lines() -> None:
    agenda = "Agenda\nSortieren und Suchen"
    pages = [agenda, "Quicksort\nTeilen am Pivot.\nAufgabe 1\nRekursion links.\nRekursion rechts.", agenda,
             agenda, "Mergesort\nHalbieren.\nAufgabe 2\nSortiert mischen.\nStabil.",
             "Suche\nBinär halbieren.\nAufgabe 3\nIndex prüfen.\nLogarithmisch.", agenda]
    cleaned = remove_repeated_lines(pages)
    assert cleaned[0] == agenda and cleaned[6] == agenda  # a repeated agenda slide is one page, not furniture
    assert "Aufgabe 1" in cleaned[1]  # a numbered line in the body is content, not a running header
    same = ["Nur dieser Satz.\n1", "Nur dieser Satz.\n2", "Nur dieser Satz.\n3", "Nur dieser Satz.\n4"]
    assert remove_repeated_lines(same) == ["Nur dieser Satz."] * 4


def test_a_title_only_slide_does_not_move_the_citation(make_pdf: Callable[..., bytes]) -> None:
    body = " ".join(f"Vererbung erlaubt Unterklassen, Verhalten der Oberklasse zu nutzen {i}." for i in range(8))
    intro = "Einführung in die Objektorientierung mit vielen Beispielen und Übungen zu Klassen."
    pages = [[intro] * 6, ["Kapitel 3: Vererbung"],
             [body[:90], body[90:180], body[180:270], body[270:]]]
    doc = load_document(make_pdf(pages), "oop.pdf")
    chunks = chunk_document(doc, ChunkingConfig(max_tokens=200, overlap_tokens=0, min_tokens=50))
    inheritance = next(c for c in chunks if "Unterklassen" in c.text)
    assert (inheritance.position, inheritance.position_end) == (3, 3)
    assert inheritance.citation_label == "oop.pdf, page 3"
    assert inheritance.heading_path == ("Kapitel 3: Vererbung",)


def test_a_title_only_pptx_slide_heads_the_next_slide() -> None:
    import pptx

    presentation = pptx.Presentation()
    title_only = presentation.slides.add_slide(presentation.slide_layouts[5])
    title_only.shapes.title.text = "Teil 2: Sortieren"
    content = presentation.slides.add_slide(presentation.slide_layouts[1])
    content.shapes.title.text = "Quicksort"
    content.placeholders[1].text = "Quicksort teilt das Feld an einem Pivot-Element in zwei Hälften."
    buffer = io.BytesIO()
    presentation.save(buffer)
    doc = load_document(buffer.getvalue(), "sort.pptx")
    chunks = chunk_document(doc)
    assert [(c.position, c.position_end) for c in chunks] == [(2, 2)]
    assert chunks[0].heading_path == ("Teil 2: Sortieren", "Quicksort")
    assert chunks[0].citation_label == "sort.pptx, slide 2"


def test_restoring_words_leaves_clean_text_alone() -> None:
    text = "Ein ganz normaler Satz ohne Zeichenfehler, mit Bindestrich-Wort und - Gedankenstrich."
    assert restore_words(text, Lexicon("de")) == text
    assert not re.search(r"[\ufffe\x00\x02]", normalise_text("a\ufffe \x02 b\x00"))
