"""A tagged PDF built by hand for the table tests: paragraphs and tables over several pages, cells as TH/TD."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    """One table row on one page (0-based); ``header``: its cells are TH inside a THead."""

    page: int
    cells: list[str]
    header: bool = False


@dataclass
class Table:
    """A Table structure element; its rows may stand on several pages."""

    rows: list[Row] = field(default_factory=list)


@dataclass
class Para:
    """A paragraph (one line of Helvetica) on one page."""

    page: int
    text: str


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def tagged_pdf(blocks: list[Para | Table], pages: int) -> bytes:
    """A PDF whose structure tree holds ``blocks`` in order; each page's content is drawn top-down in that order."""
    content = [b"" for _ in range(pages)]
    cursor = [760 for _ in range(pages)]
    next_mcid = [0 for _ in range(pages)]
    parents: list[dict[int, int]] = [{} for _ in range(pages)]  # page -> mcid -> element object
    objects: dict[int, bytes] = {}
    number = [10 + 2 * pages]  # 1 catalog, 2 pages, 3 root, 4 document, 10.. pages and their contents

    def new() -> int:
        number[0] += 1
        return number[0]

    def draw(page: int, x: int, text: str, tag: str) -> int:
        mcid = next_mcid[page]
        next_mcid[page] += 1
        content[page] += b"/%s <</MCID %d>> BDC BT /F1 11 Tf %d %d Td (%s) Tj ET EMC\n" % (
            tag.encode(), mcid, x, cursor[page], _escape(text))
        return mcid

    kids = []
    for block in blocks:
        if isinstance(block, Para):
            obj = new()
            mcid = draw(block.page, 72, block.text, "P")
            cursor[block.page] -= 20
            parents[block.page][mcid] = obj
            objects[obj] = b"<< /Type /StructElem /S /P /P 4 0 R /Pg %d 0 R /K %d >>" % (10 + 2 * block.page, mcid)
            kids.append(obj)
            continue
        table = new()
        kids.append(table)
        head = [r for r in block.rows if r.header]
        groups = [(b"THead", head), (b"TBody", [r for r in block.rows if not r.header])]
        group_objs = []
        for name, rows in groups:
            if not rows:
                continue
            group = new()
            group_objs.append(group)
            row_objs = []
            for row in rows:
                tr = new()
                row_objs.append(tr)
                cell_objs = []
                for c, text in enumerate(row.cells):
                    cell = new()
                    tag = "TH" if row.header else "TD"
                    mcid = draw(row.page, 72 + 150 * c, text, tag)
                    parents[row.page][mcid] = cell
                    objects[cell] = b"<< /Type /StructElem /S /%s /P %d 0 R /Pg %d 0 R /K %d >>" % (
                        tag.encode(), tr, 10 + 2 * row.page, mcid)
                    cell_objs.append(cell)
                cursor[row.page] -= 20
                objects[tr] = b"<< /Type /StructElem /S /TR /P %d 0 R /K [%s] >>" % (
                    group, b" ".join(b"%d 0 R" % c for c in cell_objs))
            objects[group] = b"<< /Type /StructElem /S /%s /P %d 0 R /K [%s] >>" % (
                name, table, b" ".join(b"%d 0 R" % r for r in row_objs))
        objects[table] = b"<< /Type /StructElem /S /Table /P 4 0 R /K [%s] >>" % b" ".join(
            b"%d 0 R" % g for g in group_objs)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R /MarkInfo << /Marked true >> /StructTreeRoot 3 0 R /Lang (en) >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % (10 + 2 * p) for p in range(pages)), pages)
    nums = b" ".join(b"%d [%s]" % (p, b" ".join(b"%d 0 R" % parents[p][m] for m in range(next_mcid[p])))
                     for p in range(pages))
    objects[3] = b"<< /Type /StructTreeRoot /K [4 0 R] /ParentTree << /Nums [%s] >> >>" % nums
    objects[4] = b"<< /Type /StructElem /S /Document /P 3 0 R /K [%s] >>" % b" ".join(b"%d 0 R" % k for k in kids)
    for p in range(pages):
        objects[10 + 2 * p] = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
                               b" /StructParents %d /Resources << /Font << /F1 << /Type /Font /Subtype /Type1"
                               b" /BaseFont /Helvetica /Encoding /WinAnsiEncoding >> >> >> >>" % (11 + 2 * p, p))
        objects[11 + 2 * p] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content[p]), content[p])
    return serialise(objects)


def serialise(objects: dict[int, bytes]) -> bytes:
    """A PDF file of numbered objects (object 1 the catalogue), with its cross-reference table and trailer."""
    out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    offsets = {}
    for key in sorted(objects):
        offsets[key] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (key, objects[key])
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for key in range(1, size):
        out += b"%010d 00000 n \n" % offsets[key] if key in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return out
