"""A tagged table that runs on over a page break: the rows on the next page name their columns too."""
from __future__ import annotations

from collections import Counter

from retrieval.chunking import chunk_document
from retrieval.loaders import LoadLimits, load_document
from retrieval.loaders.office import table_rows
from retrieval.loaders.pdf_tables import compact, remove_table_lines
from tests.test_retrieval.tagged_pdf import Para, Row, Table, tagged_pdf

HEADER = ["Modul", "Credits", "Semester"]
INTRO = "Die Module des ersten Studienjahres im Überblick."
OUTRO = "Die Credits werden nach bestandener Klausur vergeben."


def _tables(data: bytes) -> dict[int, list[str]]:
    doc = load_document(data, "module.pdf", limits=LoadLimits(ocr=False))
    found: dict[int, list[str]] = {}
    for section in doc.sections:
        if section.kind == "table" and section.position is not None:
            found.setdefault(section.position, []).append(section.text)
    return found


def _one_table_over_three_pages() -> bytes:
    table = Table([Row(0, HEADER, header=True), Row(0, ["Logik", "6", "Winter"]), Row(0, ["Algebra", "9", "Sommer"]),
                   Row(1, ["Statistik", "5", "Winter"]), Row(1, ["Datenbanken", "8", "Sommer"]),
                   Row(2, ["Ethik", "3", "Winter"])])
    return tagged_pdf([Para(0, INTRO), table, Para(2, OUTRO)], pages=3)


def test_a_table_element_over_three_pages_names_the_columns_on_every_page() -> None:
    tables = _tables(_one_table_over_three_pages())
    assert tables[1] == ["Modul | Credits | Semester\n"
                         "Modul: Logik | Credits: 6 | Semester: Winter\n"
                         "Modul: Algebra | Credits: 9 | Semester: Sommer"]
    assert tables[2] == ["Modul: Statistik | Credits: 5 | Semester: Winter\n"
                         "Modul: Datenbanken | Credits: 8 | Semester: Sommer"]
    assert tables[3] == ["Modul: Ethik | Credits: 3 | Semester: Winter"]


def test_the_chunk_of_the_second_page_reads_alone() -> None:
    doc = load_document(_one_table_over_three_pages(), "module.pdf", limits=LoadLimits(ocr=False))
    page_two = [chunk.text for chunk in chunk_document(doc) if chunk.position == 2]
    assert page_two == ["Modul: Statistik | Credits: 5 | Semester: Winter\n"
                        "Modul: Datenbanken | Credits: 8 | Semester: Sommer"]


def test_a_separate_headerless_table_at_the_top_of_the_next_page_continues_the_last_one() -> None:
    first = Table([Row(0, HEADER, header=True), Row(0, ["Logik", "6", "Winter"])])
    rest = Table([Row(1, ["Statistik", "5", "Winter"])])
    tables = _tables(tagged_pdf([Para(0, INTRO), first, rest, Para(1, OUTRO)], pages=2))
    assert tables[2] == ["Modul: Statistik | Credits: 5 | Semester: Winter"]


def test_a_header_row_left_alone_at_the_foot_of_a_page_names_the_rows_on_the_next() -> None:
    table = Table([Row(0, HEADER, header=True), Row(1, ["Logik", "6", "Winter"])])
    tables = _tables(tagged_pdf([Para(0, INTRO), table, Para(1, OUTRO)], pages=2))
    assert tables == {1: ["Modul | Credits | Semester"], 2: ["Modul: Logik | Credits: 6 | Semester: Winter"]}


def test_other_tables_on_the_next_page_keep_their_own_reading() -> None:
    first = Table([Row(0, HEADER, header=True), Row(0, ["Logik", "6", "Winter"])])
    two_columns = Table([Row(1, ["Raum", "H1"])])  # another column count: another table
    below_text = Table([Row(2, ["Statistik", "5", "Winter"])])  # text above it: it starts on its page
    tables = _tables(tagged_pdf([Para(0, INTRO), first, two_columns, Para(2, INTRO), Para(2, OUTRO),
                                 Para(2, INTRO), below_text], pages=3))
    assert tables[2] == ["Raum | H1"]
    assert tables[3] == ["Statistik | 5 | Winter"]


def test_a_table_with_its_own_header_on_the_next_page_keeps_it() -> None:
    first = Table([Row(0, HEADER, header=True), Row(0, ["Logik", "6", "Winter"])])
    second = Table([Row(1, ["Fach", "Stunden", "Raum"], header=True), Row(1, ["Ethik", "2", "H1"])])
    tables = _tables(tagged_pdf([Para(0, INTRO), first, second], pages=2))
    assert tables[2] == ["Fach | Stunden | Raum\nFach: Ethik | Stunden: 2 | Raum: H1"]


def test_carried_labels_name_every_row_and_a_repeated_header_row_stays_a_header() -> None:
    rows = [["Ethik", "3", "Winter"]]
    assert table_rows(rows, labels=HEADER) == "Modul: Ethik | Credits: 3 | Semester: Winter"
    assert table_rows([HEADER] + rows, labels=HEADER) == ("Modul | Credits | Semester\n"
                                                          "Modul: Ethik | Credits: 3 | Semester: Winter")


def test_a_body_line_that_joins_two_table_lines_is_removed_too() -> None:
    lines = Counter(compact(line) for line in ["Datenbanken", "8 Sommer", "Ethik", "3 Winter"])
    text = "Datenbanken8 Sommer\nEthik 3 Winter 3 Winter\nEthik und Recht"
    assert remove_table_lines(text, lines) == "Ethik 3 Winter 3 Winter\nEthik und Recht"
