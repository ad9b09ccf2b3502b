"""Structure survives loading: HTML decks as slides, valid Word files load, table headers and figure captions stay."""
from __future__ import annotations

import io
import re

import pytest

from retrieval.errors import CorruptDocumentError
from retrieval.loaders import load_document
from retrieval.types import Locator

_REMARK = """<!DOCTYPE html><html><head><title>Regression</title>
<style>.pull-left { float: left; width: 47%; }</style></head><body>
<textarea id="source">
layout: true
.footer[Statistik II - Universität X]

---
class: center, middle, inverse, title-slide

# Lineare Regression
### Statistik II

---
# Das Modell

.pull-left[
- Die Gerade hat einen Achsenabschnitt.
- Die Steigung heißt .red[Regressionskoeffizient].
]
.pull-right[
![Streudiagramm mit Gerade](plot.png)
]

???
Hier an die Tafel wechseln.

---
name: residuen
# Residuen

Residuen sind die Abstände zur Gerade.
--

Ihre Quadratsumme wird minimiert.
<style>.remark-slide-content { font-size: 20px; }</style>
</textarea>
<script src="remark.js"></script><script>var slideshow = remark.create();</script>
</body></html>"""


def test_remark_deck_is_read_as_slides() -> None:
    doc = load_document(_REMARK.encode(), "regression.html")
    assert doc.locator is Locator.SLIDE
    body = [s for s in doc.sections if s.kind == "body"]
    assert [(s.position, s.heading_path) for s in body] == [
        (1, ("Lineare Regression",)), (2, ("Das Modell",)), (4, ("Residuen",))]
    model = body[1].text
    assert "Die Steigung heißt Regressionskoeffizient." in model and "Streudiagramm mit Gerade" in model
    assert not any(marker in doc.text for marker in (".pull-left", ".red[", "]", "font-size", "class:", "name:"))
    assert "Statistik II - Universität X" not in doc.text  # the layout template is no slide
    assert "Ihre Quadratsumme wird minimiert." in body[2].text
    notes = [s for s in doc.sections if s.kind == "notes"]
    assert [(n.position, n.text) for n in notes] == [(2, "Hier an die Tafel wechseln.")]


_REVEAL = """<html><head><title>Tests</title><style>.reveal h2 { color: red; }</style></head><body>
<div class="reveal"><div class="slides">
<section id="title-slide"><h1>Klassische Tests</h1><p>Angewandte Statistik</p></section>
<section>
  <section><h2>Der t-Test</h2><p>Er vergleicht zwei Mittelwerte.</p>
    <aside class="notes">Beispiel mit Pflanzenhöhen zeigen.</aside></section>
  <section><h2>Voraussetzungen</h2><ul><li>Normalverteilung</li><li>Gleiche Varianzen</li></ul></section>
</section>
<section data-markdown><textarea data-template>
## Der Wilcoxon-Test
Rangbasiert, ohne Normalverteilung.
---
## Fazit
Tests beantworten Fragen an Daten.
Note: Zeit für Fragen lassen.
</textarea></section>
</div></div><div class="footer">Angewandte Statistik 2025</div></body></html>"""


def test_reveal_deck_is_read_as_slides_with_vertical_slides_counted() -> None:
    doc = load_document(_REVEAL.encode(), "tests.html")
    assert doc.locator is Locator.SLIDE
    body = [s for s in doc.sections if s.kind == "body"]
    assert [(s.position, s.heading_path[:1]) for s in body] == [
        (1, ("Klassische Tests",)), (2, ("Der t-Test",)), (3, ("Voraussetzungen",)),
        (4, ("Der Wilcoxon-Test",)), (5, ("Fazit",))]
    assert "Er vergleicht zwei Mittelwerte." in body[1].text and "Pflanzenhöhen" not in body[1].text
    notes = [(s.position, s.text) for s in doc.sections if s.kind == "notes"]
    assert notes == [(2, "Beispiel mit Pflanzenhöhen zeigen."), (5, "Zeit für Fragen lassen.")]
    assert "color: red" not in doc.text and "Angewandte Statistik 2025" not in doc.text


def _docx(build: object) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Klausur", level=1)
    document.add_paragraph("Die Klausur findet im Hörsaal statt.")
    build(document)  # type: ignore[operator]
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_word_file_with_an_xml_comment_in_its_body_loads() -> None:
    from lxml import etree

    data = _docx(lambda d: d.element.body.insert(0, etree.Comment(" written by a converter ")))
    assert "Die Klausur findet im Hörsaal statt." in load_document(data, "klausur.docx").text


def _table(document: object, rows: list[list[str]]) -> object:
    table = document.add_table(rows=len(rows), cols=len(rows[0]))  # type: ignore[attr-defined]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    return table


def test_word_table_with_merged_and_missing_cells_loads_with_headers() -> None:
    from docx.oxml.ns import qn

    def build(document: object) -> None:
        table = _table(document, [["Termin", "Raum", "Dauer"], ["Klausur", "H 3", "90 Minuten"],
                                  ["Nachklausur", "H 5", ""]])
        row = table._tbl.tr_lst[2]  # type: ignore[attr-defined]
        row.remove(row.tc_lst[-1])  # Word opens a row with fewer cells; python-docx's row.cells raises on it
        table.cell(0, 0).merge(table.cell(0, 1)).text = "Termin und Raum"  # type: ignore[attr-defined]
        # A cell continuing a vertical merge where the row above has no cell of its own ("no tc element at
        # grid_offset" in python-docx): Word shows it as part of the merged cell above.
        cell = table._tbl.tr_lst[1].tc_lst[1]  # type: ignore[attr-defined]
        cell.get_or_add_tcPr().append(cell.makeelement(qn("w:vMerge"), {}))

    doc = load_document(_docx(build), "termine.docx")
    table = next(s for s in doc.sections if s.kind == "table")
    assert table.text.splitlines() == ["Termin und Raum | Dauer",
                                       "Termin und Raum: Klausur | Termin und Raum | Dauer: 90 Minuten",
                                       "Termin und Raum: Nachklausur | Termin und Raum: H 5"]


def test_a_really_damaged_word_file_is_still_reported_as_damaged() -> None:
    data = _docx(lambda d: None)
    with pytest.raises(CorruptDocumentError):
        load_document(data[: len(data) // 2], "broken.docx")


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_word_picture_keeps_its_description_next_to_its_caption() -> None:
    def build(document: object) -> None:
        document.add_picture(io.BytesIO(_png()))  # type: ignore[attr-defined]
        shape = document.inline_shapes[-1]  # type: ignore[attr-defined]
        shape._inline.docPr.set("descr", "Boxplot der Klausurnoten")
        document.add_paragraph("Abbildung 1: Notenverteilung 2024")  # type: ignore[attr-defined]

    text = load_document(_docx(build), "noten.docx").text
    assert "Boxplot der Klausurnoten\nAbbildung 1: Notenverteilung 2024" in text


def test_html_figures_keep_alt_text_and_caption_and_tables_their_header() -> None:
    html = ("<html><body><h1>Ergebnisse</h1><figure><img src='a.png' alt='Histogramm der Wartezeiten'>"
            "<figcaption>Abbildung 2: Wartezeiten in Minuten</figcaption></figure>"
            "<table><thead><tr><th>Gruppe</th><th>Mittelwert</th></tr></thead>"
            "<tbody><tr><td>A</td><td>4,2</td></tr><tr><td>B</td><td>5,1</td></tr></tbody></table>"
            "<table><tr><td>ohne</td><td>Kopf</td></tr><tr><td>x</td><td>y</td></tr></table></body></html>")
    doc = load_document(html.encode(), "ergebnisse.html")
    text = doc.text
    figure = next(s.text for s in doc.sections if "Histogramm" in s.text)
    assert re.search(r"Histogramm der Wartezeiten\s+Abbildung 2: Wartezeiten in Minuten", figure)
    assert "Gruppe | Mittelwert\nGruppe: A | Mittelwert: 4,2\nGruppe: B | Mittelwert: 5,1" in text
    assert "ohne | Kopf\nx | y" in text


def test_pptx_table_rows_keep_the_header_and_pictures_their_alt_text() -> None:
    import pptx
    from pptx.util import Inches

    presentation = pptx.Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "Noten"
    table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(4), Inches(2)).table
    for r, row in enumerate([["Note", "Anzahl"], ["1,0", "12"], ["2,0", "30"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    picture = slide.shapes.add_picture(io.BytesIO(_png()), Inches(5), Inches(2))
    picture._element.nvPicPr.cNvPr.set("descr", "Balkendiagramm der Noten")
    buffer = io.BytesIO()
    presentation.save(buffer)
    text = load_document(buffer.getvalue(), "noten.pptx").text
    assert "Note | Anzahl\nNote: 1,0 | Anzahl: 12\nNote: 2,0 | Anzahl: 30" in text
    assert "Balkendiagramm der Noten" in text
