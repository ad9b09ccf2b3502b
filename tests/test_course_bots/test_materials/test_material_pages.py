"""A file's pages as the bot read them: exclusions and replacements are what is indexed, per file version."""
from __future__ import annotations

import io
from typing import Any, Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from course_bots.materials.course_index import search_course
from course_bots.materials.jobs import run_pending
from course_bots.materials.models import MaterialPageEdit
from course_bots.materials.pages import apply_edits, chunk_pages, page_units
from lti_tool.extensions import db
from retrieval.types import Document, Locator, Section
from tests.test_course_bots.conftest import BOTH_DATABASES, auth_headers, post_file

PAGES_V1 = [["Photosynthesis happens in chloroplasts and turns light into sugar."],
            ["Old exam 2019: question one asks about mitochondria and the Krebs cycle in detail."],
            ["The formula of glucose was read wrongly by OCR as C6H1206 garbage."]]
PAGES_V2 = [["Photosynthesis happens in chloroplasts and turns light into sugar, revised edition."],
            ["Old exam 2019: question one asks about mitochondria and the Krebs cycle in detail."],
            ["The formula of glucose is printed again, still wrong as C6H1206 garbage."]]
API = "/api/v1/bots/1/materials"


def pdf(pages: list[list[str]]) -> bytes:
    """A text PDF with one page per list of lines."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    drawing = canvas.Canvas(out, invariant=1)  # the same bytes every time
    for lines in pages:
        for number, line in enumerate(lines):
            drawing.drawString(72, 720 - 16 * number, line)
        drawing.showPage()
    drawing.save()
    return out.getvalue()


@pytest.fixture(params=BOTH_DATABASES)
def papp(request: pytest.FixtureRequest, two_courses: Callable[..., Flask]) -> Flask:
    """Courses 1 and 2, on SQLite and on PostgreSQL."""
    return two_courses(request.param)


def upload(app: Flask, client: FlaskClient, data: bytes, name: str = "Biology.pdf", bot_id: int = 1) -> int:
    response = post_file(client, auth_headers(app, bot_id), name, data, bot_id=bot_id)
    assert response.status_code in (200, 201), response.get_json()
    with app.app_context():
        run_pending()
    return int(response.get_json()["materials"][0]["id"])


def cited_pages(app: Flask, material_id: int, query: str, bot_id: int = 1) -> set[int]:
    """The pages of this material that the passages the search returns for a question cover."""
    with app.app_context():
        hits = search_course(bot_id, query, k=8)
    return {n for h in hits if h.chunk.document_id == f"material:{material_id}" and h.chunk.position is not None
            for n in range(h.chunk.position, (h.chunk.position_end or h.chunk.position) + 1)}


def found_texts(app: Flask, query: str, bot_id: int = 1) -> str:
    """Every passage text the search returns for a question, joined."""
    with app.app_context():
        return " ".join(h.chunk.text for h in search_course(bot_id, query, k=8))


def edit(app: Flask, client: FlaskClient, material_id: int, number: int, body: dict[str, Any]) -> Any:
    response = client.put(f"{API}/{material_id}/pages/{number}", headers=auth_headers(app), json=body)
    with app.app_context():
        run_pending()
    return response


def test_pages_show_the_extracted_text_and_the_passages(papp: Flask) -> None:
    client = papp.test_client()
    material_id = upload(papp, client, pdf(PAGES_V1))
    body = client.get(f"{API}/{material_id}/pages", headers=auth_headers(papp)).get_json()
    assert body["available"] is True and body["locator"] == "page"
    assert [p["number"] for p in body["pages"]] == [1, 2, 3]
    assert "Krebs cycle" in body["pages"][1]["text"]
    assert body["pages"][1]["passages"] and "Krebs cycle" in body["pages"][1]["passages"][0]["text"]
    assert all(p["edit"] is None and p["previous_edit"] is None for p in body["pages"])


def test_an_excluded_page_leaves_the_index_and_survives_reindexing(papp: Flask) -> None:
    client = papp.test_client()
    material_id = upload(papp, client, pdf(PAGES_V1))
    question = "What does the old exam ask about mitochondria and the Krebs cycle?"
    assert 2 in cited_pages(papp, material_id, question)
    response = edit(papp, client, material_id, 2, {"excluded": True})
    assert response.status_code == 202 and response.get_json()["material"]["status"] == "queued"
    assert "Krebs" not in found_texts(papp, question)
    page = client.get(f"{API}/{material_id}/pages", headers=auth_headers(papp)).get_json()["pages"][1]
    assert page["edit"]["excluded"] is True and page["passages"] == [] and "Krebs" in page["text"]
    listing = client.get(API, headers=auth_headers(papp)).get_json()["materials"][0]
    assert listing["page_edits"] == {"excluded": 1, "replaced": 0, "to_review": 0}
    client.post(f"{API}/{material_id}/reindex", headers=auth_headers(papp))  # re-indexing the unchanged file
    assert upload(papp, client, pdf(PAGES_V1)) == material_id  # and uploading the same bytes again
    with papp.app_context():
        run_pending()
    assert "Krebs" not in found_texts(papp, question)
    restored = edit(papp, client, material_id, 2, {"excluded": False, "replacement": None})
    assert restored.get_json()["pages"]["pages"][1]["edit"] is None
    assert 2 in cited_pages(papp, material_id, question)


def test_a_replaced_page_is_indexed_as_the_teacher_wrote_it(papp: Flask) -> None:
    client = papp.test_client()
    material_id = upload(papp, client, pdf(PAGES_V1))
    text = "Glucose has the formula C6H12O6; <b>six</b> carbon atoms form its ring."
    assert edit(papp, client, material_id, 3, {"replacement": text}).status_code == 202
    assert 3 in cited_pages(papp, material_id, "How many carbon atoms form the ring of glucose?")
    assert "garbage" not in found_texts(papp, "C6H1206 garbage")  # the misread text is indexed no more
    page = client.get(f"{API}/{material_id}/pages", headers=auth_headers(papp)).get_json()["pages"][2]
    assert page["edit"]["replacement"] == text  # stored as written; the page shows it as text
    assert "garbage" in page["text"] and "six" in page["passages"][0]["text"]
    client.post(f"{API}/{material_id}/reindex", headers=auth_headers(papp))
    with papp.app_context():
        run_pending()
    assert 3 in cited_pages(papp, material_id, "How many carbon atoms form the ring of glucose?")


def test_a_new_version_shows_the_old_edits_and_the_teacher_decides_per_page(papp: Flask) -> None:
    client = papp.test_client()
    old_id = upload(papp, client, pdf(PAGES_V1))
    edit(papp, client, old_id, 2, {"excluded": True})
    edit(papp, client, old_id, 3, {"replacement": "Glucose: C6H12O6, six carbon atoms in a ring."})
    new_id = upload(papp, client, pdf(PAGES_V2))
    assert new_id != old_id
    listing = client.get(API, headers=auth_headers(papp)).get_json()["materials"]
    assert [m["id"] for m in listing] == [new_id]  # the old version left; its edits did not
    assert listing[0]["page_edits"] == {"excluded": 0, "replaced": 0, "to_review": 2}
    pages = client.get(f"{API}/{new_id}/pages", headers=auth_headers(papp)).get_json()["pages"]
    assert pages[1]["edit"] is None and pages[1]["previous_edit"]["excluded"] is True
    assert pages[1]["previous_edit"]["text_unchanged"] is True
    assert pages[2]["previous_edit"]["replacement"].startswith("Glucose") is True
    assert pages[2]["previous_edit"]["text_unchanged"] is False
    question = "What does the old exam ask about mitochondria and the Krebs cycle?"
    assert "Krebs" in found_texts(papp, question)  # not applied before the teacher decides
    kept = client.patch(f"{API}/{new_id}/pages/2", headers=auth_headers(papp), json={"keep": True})
    assert kept.status_code == 202
    dropped = client.patch(f"{API}/{new_id}/pages/3", headers=auth_headers(papp), json={"keep": False})
    assert dropped.status_code == 200  # nothing to re-index
    with papp.app_context():
        run_pending()
    assert "Krebs" not in found_texts(papp, question)
    pages = client.get(f"{API}/{new_id}/pages", headers=auth_headers(papp)).get_json()["pages"]
    assert pages[1]["edit"]["excluded"] is True and pages[1]["previous_edit"] is None
    assert pages[2]["edit"] is None and pages[2]["previous_edit"] is None
    again = client.patch(f"{API}/{new_id}/pages/3", headers=auth_headers(papp), json={"keep": True})
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "edit_not_found"


def test_students_and_other_courses_cannot_read_or_edit_pages(papp: Flask) -> None:
    client = papp.test_client()
    material_id = upload(papp, client, pdf(PAGES_V1))
    url = f"{API}/{material_id}/pages"
    student = auth_headers(papp, role="learner")
    assert client.get(url, headers=student).status_code == 403
    assert client.put(f"{url}/2", headers=student, json={"excluded": True}).status_code == 403
    assert client.patch(f"{url}/2", headers=student, json={"keep": True}).status_code == 403
    other = auth_headers(papp, bot_id=2)
    assert client.get(url, headers=other).status_code == 403  # another course's session on this course's URL
    foreign = f"/api/v1/bots/2/materials/{material_id}/pages"  # this course's material under the other course
    assert client.get(foreign, headers=other).status_code == 404
    assert client.put(f"{foreign}/2", headers=other, json={"excluded": True}).status_code == 404
    assert client.patch(f"{foreign}/2", headers=other, json={"keep": True}).status_code == 404
    assert client.get(f"{API}/99999/pages", headers=auth_headers(papp)).status_code == 404
    assert client.get(url, headers={}).status_code == 401
    with papp.app_context():
        assert db.session.query(MaterialPageEdit).count() == 0


def test_page_edits_are_validated(papp: Flask) -> None:
    client = papp.test_client()
    material_id = upload(papp, client, pdf(PAGES_V1))
    url = f"{API}/{material_id}/pages"
    missing = client.put(f"{url}/9", headers=auth_headers(papp), json={"excluded": True})
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "page_not_found"
    blank = client.put(f"{url}/1", headers=auth_headers(papp), json={"replacement": "   "})
    assert blank.status_code == 400 and blank.get_json()["error"]["code"] == "invalid_page_edit"
    long = client.put(f"{url}/1", headers=auth_headers(papp), json={"replacement": "x" * 20001})
    assert long.status_code == 400 and long.get_json()["error"]["code"] == "invalid_page_edit"
    wrong = client.put(f"{url}/1", headers=auth_headers(papp), json={"excluded": "yes"})
    assert wrong.status_code == 400
    huge = client.put(f"{url}/1", headers={**auth_headers(papp), "Content-Type": "application/json"},
                      data=b'{"replacement": "' + b"x" * 300_000 + b'"}')
    assert huge.status_code == 413
    assert client.patch(f"{url}/1", headers=auth_headers(papp), json={"keep": 1}).status_code == 400


def test_sections_of_a_document_without_pages_are_counted_and_edited() -> None:
    document = Document("d", "Notes", (Section("Intro text about cells.", None, ("Intro",)),
                                       Section("Methods text about microscopes.", None, ("Methods",)),
                                       Section("More methods.", None, ("Methods",)),
                                       Section("Results text about growth.", None, ("Results",))),
                        locator=Locator.SECTION)
    units = page_units(document)
    assert [(u.number, u.heading) for u in units] == [(1, "Intro"), (2, "Methods"), (3, "Results")]
    assert units[1].text == "Methods text about microscopes.\n\nMore methods."

    class Edit:
        excluded, replacement = False, "Methods, as the teacher wrote them."

    chunks, passages = chunk_pages(apply_edits(document, units, {2: Edit()}))  # type: ignore[dict-item]
    text = " ".join(c.text for c in chunks)
    assert "teacher wrote them" in text and "microscopes" not in text
    assert all(c.position is None for c in chunks)  # a section number is never cited as a page
    assert set(passages) <= {1, 2, 3} and 2 in passages


def test_a_new_semester_copy_keeps_the_page_edits(papp: Flask) -> None:
    client = papp.test_client()
    material_id = upload(papp, client, pdf(PAGES_V1))
    edit(papp, client, material_id, 2, {"excluded": True})
    code = client.post("/api/v1/bots/1/copy-code", headers=auth_headers(papp)).get_json()["code"]
    copied = client.post("/api/v1/bots/2/copy-from", headers=auth_headers(papp, bot_id=2), json={"code": code})
    assert copied.status_code == 200, copied.get_json()
    with papp.app_context():
        run_pending()
    listing = client.get("/api/v1/bots/2/materials", headers=auth_headers(papp, bot_id=2)).get_json()["materials"]
    assert listing[0]["status"] == "ready" and listing[0]["page_edits"]["excluded"] == 1
    pages = client.get(f"/api/v1/bots/2/materials/{listing[0]['id']}/pages",
                       headers=auth_headers(papp, bot_id=2)).get_json()["pages"]
    assert pages[1]["edit"]["excluded"] is True
    assert "Krebs" not in found_texts(papp, "What does the old exam ask about the Krebs cycle?", bot_id=2)


def test_a_file_without_pages_is_shown_and_edited_by_sections(papp: Flask) -> None:
    client = papp.test_client()
    notes = ("# Osmosis\n\nWater moves across a semipermeable membrane towards the higher solute concentration.\n\n"
             "# Diffusion\n\nParticles spread from high to low concentration until the platypus balance is reached.\n\n"
             "# Active transport\n\nPumps move ions against their gradient and spend ATP on every cycle.\n").encode()
    material_id = upload(papp, client, notes, name="Transport notes.md")
    body = client.get(f"{API}/{material_id}/pages", headers=auth_headers(papp)).get_json()
    assert body["locator"] == "section"
    sections = [(p["number"], p["heading"]) for p in body["pages"]]
    assert sections[:3] == [(1, "Osmosis"), (2, "Diffusion"), (3, "Active transport")]
    assert all(p["passages"] for p in body["pages"])
    edit(papp, client, material_id, 2, {"replacement": "Diffusion ends in the narwhal equilibrium."})
    assert "platypus" not in found_texts(papp, "When does diffusion stop? platypus balance")
    with papp.app_context():
        hits = search_course(1, "narwhal equilibrium", k=3)
    assert "narwhal" in hits[0].chunk.text and hits[0].chunk.position is None  # cited by its heading, not a number
