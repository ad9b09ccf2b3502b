"""Code listings keep their indentation from the PDF (or text file) to the chunk; prose is normalised as before."""
from __future__ import annotations

import io

from retrieval.chunking import chunk_document
from retrieval.listings import indent_width, listing_lines, looks_like_code
from retrieval.loaders import LoadLimits, load_document
from retrieval.loaders.cleanup import normalise_text
from retrieval.types import Document, Locator, Section

LISTING = ["def betrag(x):", "    if x > 0:", "        return x", "    return -x"]
INDENTED = "\n".join(LISTING)
INTRO = "Die Funktion betrag gibt den Betrag einer Zahl zurück:"
OUTRO = "Der Aufruf betrag(-3) ergibt also drei."


def _lecture_pdf(literal_spaces: bool, numbered: bool = False) -> bytes:
    """A page of prose (Helvetica) around a Python listing in Courier, drawn as lecture tools draw listings.

    ``literal_spaces``: each line is drawn with its leading spaces (pdfium's text keeps at most one of them);
    otherwise each line is drawn without them, at the x of its indentation (as LaTeX's listings package does).
    ``numbered``: line numbers stand in a gutter left of the listing, in Courier too.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setFont("Helvetica", 11)
    pdf.drawString(72, 760, INTRO)
    pdf.setFont("Courier", 10)
    y = 740
    for number, line in enumerate(LISTING, start=1):
        if numbered:
            pdf.drawString(50, y, str(number))
        code = line.lstrip()
        indent = len(line) - len(code)
        if literal_spaces:
            pdf.drawString(72, y, line)
        else:
            pdf.drawString(72 + indent * pdf.stringWidth(" ", "Courier", 10), y, code)
        y -= 12
    pdf.setFont("Helvetica", 11)
    pdf.drawString(72, y - 16, OUTRO)
    pdf.drawString(84, y - 32, "Einrückungen im Fließtext werden wie bisher entfernt.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _chunks(data: bytes, name: str) -> list[str]:
    doc = load_document(data, name, limits=LoadLimits(ocr=False))
    return [chunk.text for chunk in chunk_document(doc)]


def test_a_python_listing_in_a_pdf_keeps_its_indentation_in_the_chunk() -> None:
    for literal_spaces in (True, False):
        (text,) = _chunks(_lecture_pdf(literal_spaces), "vorlesung.pdf")
        assert INDENTED in text, text
        # The prose around it is normalised as before: no line of it starts with a space.
        assert f"{INTRO}\ndef betrag" in text
        assert text.endswith(f"{OUTRO}\nEinrückungen im Fließtext werden wie bisher entfernt.")


def test_line_numbers_in_a_gutter_are_left_out_and_do_not_shift_the_indentation() -> None:
    (text,) = _chunks(_lecture_pdf(literal_spaces=False, numbered=True), "vorlesung.pdf")
    assert f"{INTRO}\n{INDENTED}\n{OUTRO}" in text


def test_prose_with_stray_leading_spaces_is_still_normalised() -> None:
    prose = ("   Die Klausur findet am Ende des Semesters statt.\n"
             " Sie dauert  90 Minuten.\n\n"
             "      Zugelassen sind alle, die die Übungen bestanden haben.\n"
             "  - Skript\n"
             "    - eigene Notizen")
    expected = ("Die Klausur findet am Ende des Semesters statt.\nSie dauert 90 Minuten.\n\n"
                "Zugelassen sind alle, die die Übungen bestanden haben.\n- Skript\n- eigene Notizen")
    assert normalise_text(prose) == expected
    (text,) = _chunks(prose.encode(), "hinweise.txt")
    assert text == expected.replace("\n\n", "\n")  # the chunk joins paragraphs, as before


def test_the_chunker_keeps_a_listing_indented_and_strips_prose() -> None:
    section = Section(text=f"  {INTRO}\n{INDENTED}\n {OUTRO}", position=3)
    doc = Document(document_id="d", title="Skript.pdf", sections=(section,), locator=Locator.PAGE)
    (chunk,) = chunk_document(doc)
    assert chunk.text == f"{INTRO}\n{INDENTED}\n{OUTRO}"


def test_a_blank_line_inside_a_listing_keeps_it_together() -> None:
    text = "Zwei Funktionen:\nclass Konto:\n    def __init__(self):\n        self.stand = 0\n\n" \
           "    def einzahlen(self, betrag):\n        self.stand += betrag"
    assert normalise_text(text) == text
    assert listing_lines(text.split("\n")) == set(range(1, 7))


def test_tabs_become_four_columns() -> None:
    assert indent_width("\t\treturn x") == 8
    assert normalise_text("def f(x):\n\treturn x") == "def f(x):\n    return x"


def test_what_counts_as_code() -> None:
    for line in ["return x", "for (int i = 0; i < n; i++) {", "x += 1", "print(summe)", "}", "@Override",
                 "WENN a > b DANN"]:
        assert looks_like_code(line), line
    for line in ["Beispiel:", "Die Klausur ist am 3. Februar. Bitte anmelden.", "Wenn es regnet, bleiben wir hier",
                 "- Skript", "(siehe Kapitel 3)"]:
        assert not looks_like_code(line), line
