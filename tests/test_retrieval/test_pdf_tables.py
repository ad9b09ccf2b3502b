"""Tagged PDFs: a table keeps its header with each row, a figure keeps its alternative text; untagged PDFs as before."""
from __future__ import annotations

import pytest

from retrieval.loaders import LoadLimits, load_document
from retrieval.loaders.pdf import load_pdf_pages
from retrieval.loaders.pdf_tables import compact, remove_table_lines
from tests.test_retrieval.tagged_pdf import serialise

INTRO = "Overview of the modules in the first year of the programme."
OUTRO = "Credits are awarded after the written examination at the end of term."
HEADER = ["Module", "Credits", "Semester"]
ROWS = [["Logic", "6", "Winter"], ["Algebra", "9", "Summer"], ["Programming", "8", "Winter"]]
ALT = "Bar chart of the credits per semester"


def _text(x: int, y: int, text: str) -> bytes:
    """One line of Helvetica at (x, y)."""
    return f"BT /F1 11 Tf {x} {y} Td ({text}) Tj ET\n".encode()


def _marked(tag: str, mcid: int, content: bytes, tagged: bool) -> bytes:
    """Content wrapped in a marked-content sequence with an MCID (or left bare for the untagged twin)."""
    return b"/%s <</MCID %d>> BDC\n%s EMC\n" % (tag.encode(), mcid, content) if tagged else content


def make_table_pdf(tagged: bool = True, tree: str = "good", alt: str = ALT) -> bytes:
    """A one-page PDF: a paragraph, a 3-column table with a header row, a figure, a paragraph.

    ``tree``: "good", "cycle" (a row that contains its table), "garbage" (structure entries of the wrong types),
    "no_parent_tree" (elements but no /ParentTree).
    """
    grid = [HEADER] + ROWS
    content = _marked("P", 0, _text(72, 740, INTRO), tagged)
    mcid = 1
    cell_ids: list[list[int]] = []
    for r, row in enumerate(grid):
        ids = []
        for c, cell in enumerate(row):
            content += _marked("TH" if r == 0 else "TD", mcid, _text(72 + 150 * c, 700 - 20 * r, cell), tagged)
            ids.append(mcid)
            mcid += 1
        cell_ids.append(ids)
    figure_id = mcid
    content += _marked("Figure", figure_id, b"0.5 g 72 500 200 80 re f 0 g\n", tagged)
    outro_id = figure_id + 1
    content += _marked("P", outro_id, _text(72, 460, OUTRO), tagged)

    objects: dict[int, bytes] = {}
    catalog = b"<< /Type /Catalog /Pages 2 0 R"
    if tagged:
        catalog += b" /MarkInfo << /Marked true >> /StructTreeRoot 5 0 R /Lang (en)"
    objects[1] = catalog + b" >>"
    objects[2] = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
    objects[3] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /StructParents 0"
                  b" /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica"
                  b" /Encoding /WinAnsiEncoding >> >> >> >>")
    objects[4] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
    # Structure: 5 root, 6 Document, 7 P, 8 Table, 9.. TRs, then cells, then Figure and P.
    number = 9
    row_objs = []
    cell_objs: list[int] = []
    parent_of: dict[int, int] = {}  # mcid -> element object
    for r, ids in enumerate(cell_ids):
        row_obj = number
        number += 1
        row_objs.append(row_obj)
        kids = []
        for c, cell_mcid in enumerate(ids):
            kids.append(number)
            cell_objs.append(number)
            parent_of[cell_mcid] = number
            objects[number] = (b"<< /Type /StructElem /S /%s /P %d 0 R /Pg 3 0 R /K %d >>"
                               % (b"TH" if r == 0 else b"TD", row_obj, cell_mcid))
            number += 1
        row_kids = b" ".join(b"%d 0 R" % k for k in kids)
        if tree == "cycle" and r == 1:
            row_kids += b" 8 0 R"
        group = b"THEAD" if r == 0 else b"TBODY"  # placeholders for the row group's reference, set below
        objects[row_obj] = b"<< /Type /StructElem /S /TR /P %s /K [%s] >>" % (group, row_kids)
    figure_obj, outro_obj = number, number + 1
    objects[figure_obj] = (b"<< /Type /StructElem /S /Figure /P 6 0 R /Pg 3 0 R /Alt (%s) /K %d >>"
                           % (alt.encode(), figure_id))
    objects[outro_obj] = b"<< /Type /StructElem /S /P /P 6 0 R /Pg 3 0 R /K %d >>" % outro_id
    parent_of[0], parent_of[figure_id], parent_of[outro_id] = 7, figure_obj, outro_obj
    objects[7] = b"<< /Type /StructElem /S /P /P 6 0 R /Pg 3 0 R /K 0 >>"
    if tree == "garbage":
        objects[8] = b"<< /Type /StructElem /S /Table /P 6 0 R /K [(not a row) 3.5 /Name << /Foo 1 >>] >>"
    else:
        body = b" ".join(b"%d 0 R" % k for k in row_objs[1:])
        objects[8] = (b"<< /Type /StructElem /S /Table /P 6 0 R /K [%d 0 R %d 0 R] >>"
                      % (number + 2, number + 3))
        objects[number + 2] = b"<< /Type /StructElem /S /THead /P 8 0 R /K [%d 0 R] >>" % row_objs[0]
        objects[number + 3] = b"<< /Type /StructElem /S /TBody /P 8 0 R /K [%s] >>" % body
    groups = (b"%d 0 R" % (number + 2), b"%d 0 R" % (number + 3)) if tree != "garbage" else (b"8 0 R", b"8 0 R")
    for row_obj in row_objs:
        objects[row_obj] = objects[row_obj].replace(b"THEAD", groups[0]).replace(b"TBODY", groups[1])
    objects[6] = b"<< /Type /StructElem /S /Document /P 5 0 R /K [7 0 R 8 0 R %d 0 R %d 0 R] >>" % (
        figure_obj, outro_obj)
    nums = b" ".join(b"%d 0 R" % parent_of[i] for i in range(outro_id + 1))
    parent_tree = b"" if tree == "no_parent_tree" else b" /ParentTree << /Nums [0 [%s]] >>" % nums
    objects[5] = b"<< /Type /StructTreeRoot /K [6 0 R]%s >>" % parent_tree
    if not tagged:
        objects = {k: v for k, v in objects.items() if k <= 4}
    return serialise(objects)


def _sections(data: bytes) -> list[tuple[str, int | None, str]]:
    doc = load_document(data, "modules.pdf", limits=LoadLimits(ocr=False))
    return [(s.kind, s.position, s.text) for s in doc.sections]


def test_tagged_table_repeats_its_header_with_each_row() -> None:
    sections = _sections(make_table_pdf())
    tables = [text for kind, _, text in sections if kind == "table"]
    assert tables == ["Module | Credits | Semester\n"
                      "Module: Logic | Credits: 6 | Semester: Winter\n"
                      "Module: Algebra | Credits: 9 | Semester: Summer\n"
                      "Module: Programming | Credits: 8 | Semester: Winter"]
    assert [(kind, position) for kind, position, _ in sections] == [("body", 1), ("table", 1)]


def test_table_rows_are_not_also_left_as_loose_body_lines() -> None:
    body = next(text for kind, _, text in _sections(make_table_pdf()) if kind == "body")
    assert INTRO in body and OUTRO in body
    for row in ROWS:
        assert row[0] not in body
    assert "Semester" not in body


def test_figure_keeps_its_alternative_text_on_its_page() -> None:
    body = next(text for kind, _, text in _sections(make_table_pdf()) if kind == "body")
    assert body.index(OUTRO) < body.index(ALT)


@pytest.mark.parametrize("placeholder", ["Figure", "Bild 3", "image1.png"])
def test_a_placeholder_alternative_text_is_left_out(placeholder: str) -> None:
    body = next(text for kind, _, text in _sections(make_table_pdf(alt=placeholder)) if kind == "body")
    assert body.endswith(OUTRO)


def test_untagged_pdf_with_the_same_content_reads_as_before() -> None:
    data = make_table_pdf(tagged=False)
    sections = _sections(data)
    assert [kind for kind, _, _ in sections] == ["body"]
    body = sections[0][2]
    assert "Logic 6 Winter" in body and "Module Credits Semester" in body
    assert ALT not in body
    limits = LoadLimits(ocr=False)
    assert load_pdf_pages(data, limits, None, {}) == load_pdf_pages(data, limits)  # the old path, unchanged


@pytest.mark.parametrize("tree", ["cycle", "garbage", "no_parent_tree"])
def test_broken_structure_tree_never_fails_the_file(tree: str) -> None:
    sections = _sections(make_table_pdf(tree=tree))
    text = "\n".join(text for _, _, text in sections)
    assert INTRO in text and OUTRO in text
    for row in ROWS:  # each value is still there: in a table section or as a loose line
        assert all(value in text for value in row)
    if tree == "garbage":  # no rows: the table is read as the untagged twin's loose lines
        assert [kind for kind, _, _ in sections] == ["body"]
        untagged = _sections(make_table_pdf(tagged=False))[0][2]
        assert sections[0][2] == untagged + "\n\n" + ALT


def test_a_body_line_is_removed_once_per_table_line() -> None:
    table_lines = {compact("Logic 6 Winter"): 1}
    text = "Logic 6 Winter\nIntro\nLogic  6 Winter"
    assert remove_table_lines(text, table_lines) == "Intro\nLogic  6 Winter"  # type: ignore[arg-type]


def test_an_error_inside_the_structure_tree_reads_the_page_as_untagged(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval.loaders import pdf_tables

    def broken(page: object, textpage: object) -> None:
        raise RuntimeError("pdfium returned nonsense")

    monkeypatch.setattr(pdf_tables, "_read", broken)
    assert _sections(make_table_pdf()) == _sections(make_table_pdf(tagged=False))


def test_the_element_budget_bounds_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval.loaders import pdf_tables

    monkeypatch.setattr(pdf_tables, "MAX_ELEMENTS", 3)  # Document, P, Table: the table's rows are never reached
    sections = _sections(make_table_pdf())
    assert [kind for kind, _, _ in sections] == ["body"]
    assert "Logic 6 Winter" in sections[0][2]


def test_a_table_without_header_cells_gets_no_labels() -> None:
    data = make_table_pdf().replace(b"/S /TH ", b"/S /TD ").replace(b"/S /THead", b"/S /TBody")
    tables = [text for kind, _, text in _sections(data) if kind == "table"]
    assert tables == ["Module | Credits | Semester\nLogic | 6 | Winter\nAlgebra | 9 | Summer\nProgramming | 8 | Winter"]
