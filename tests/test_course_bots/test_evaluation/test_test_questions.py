"""Teachers' test questions: the API, when a run is due, what a run finds, and that a copy from the logs is
anonymous."""
from __future__ import annotations

import io
import time
from datetime import timedelta
from typing import Any, Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from course_bots.evaluation import jobs
from course_bots.evaluation import operations as svc
from course_bots.evaluation.models import TestQuestion, TestRun
from course_bots.materials.jobs import run_pending
from course_bots.materials.operations import upload_material
from course_bots.models import CourseBot
from course_bots.privacy.operations import delete_bot
from lti_tool.extensions import db, utcnow
from tests.test_course_bots.conftest import auth_headers, post_file

TOPICS = [
    "Photosynthesis in chloroplasts turns light, water and carbon dioxide into glucose and oxygen.",
    "Mitochondria produce ATP through cellular respiration in the inner membrane.",
    "Osmosis moves water across a semipermeable membrane towards higher solute concentration.",
    "Enzymes are proteins that lower the activation energy of chemical reactions.",
    "Ribosomes translate messenger RNA into chains of amino acids.",
    "The cell cycle has interphase, mitosis and cytokinesis.",
    "Meiosis halves the chromosome number and creates genetic variation by crossing over.",
]


def pdf(pages: list[str]) -> bytes:
    """A text PDF with one topic per page."""
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    for text in pages:
        for row in range(6):
            page.drawString(60, 760 - 18 * row, text if row % 2 == 0 else text.split(" ", 3)[-1])
        page.showPage()
    page.save()
    return buffer.getvalue()


@pytest.fixture
def eapp(two_courses: Callable[..., Flask]) -> Flask:
    """Courses 1 and 2 on SQLite; a run is due as soon as something changed."""
    return two_courses(test_questions_settle_seconds=0)


def token(app: Flask, bot_id: int = 1, role: str = "instructor") -> dict[str, str]:
    """A session of the teacher's page in German."""
    return auth_headers(app, bot_id, role, locale="de")


def upload(app: Flask, client: FlaskClient, headers: dict[str, str], name: str, data: bytes) -> None:
    response = post_file(client, headers, name, data)
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        run_pending()


def settled_overview(client: FlaskClient, headers: dict[str, str], runs: int) -> dict[str, Any]:
    """Ask for the tab's data until the background run has finished (it never runs inside the request)."""
    for _ in range(400):
        body = client.get("/api/v1/bots/1/test-questions", headers=headers).get_json()
        if len(body["history"]) >= runs and not body["pending"]:
            return body  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no finished run: {body}")


def test_teacher_adds_questions_and_sees_results_after_every_upload(eapp: Flask) -> None:
    client, teacher = eapp.test_client(), token(eapp)
    upload(eapp, client, teacher, "skript.pdf", pdf(TOPICS))
    empty = client.get("/api/v1/bots/1/test-questions", headers=teacher).get_json()
    assert empty["files"] == ["skript.pdf"] and empty["latest"] is None and empty["pending"] is False
    asked = [("Where is ATP produced by mitochondria?", 2), ("What do ribosomes translate?", 5),
             ("How does osmosis move water?", 7)]
    for text, page in asked:
        response = client.post("/api/v1/bots/1/test-questions", headers=teacher,
                               json={"question": text, "expected_file": "skript.pdf", "expected_page": page})
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["source"] == "teacher"
    first = settled_overview(client, teacher, 1)
    results = {r["question"]: r for r in first["latest"]["results"]}
    assert results[asked[0][0]]["rank"] == 1 and results[asked[0][0]]["would_answer"] is True
    assert results[asked[1][0]]["rank"] == 1
    assert results[asked[2][0]]["rank"] != 1 and results[asked[2][0]]["best"]["page"] != 7
    assert first["latest"]["reason"] == "first" and first["latest"]["previous_found"] is None
    assert first["latest"]["total"] == 3 and first["latest"]["found_1"] == 2

    # A question about a file that comes with the next upload: not found now, found after the upload.
    notes = b"# Genetics\n\n" + b"Mendel crossed pea plants and found dominant and recessive alleles. " * 6
    upload(eapp, client, teacher, "genetik.md", notes)
    client.post("/api/v1/bots/1/test-questions", headers=teacher,
                json={"question": "What did Mendel find with pea plants?", "expected_file": "genetik.md"})
    second = settled_overview(client, teacher, 2)
    assert second["latest"]["total"] == 4 and second["latest"]["previous_found"] == first["latest"]["found_5"]
    mendel = [r for r in second["latest"]["results"] if r["expected_file"] == "genetik.md"][0]
    assert mendel["rank"] == 1 and mendel["expected_page"] is None
    assert [run["id"] for run in second["history"]] == sorted((run["id"] for run in second["history"]), reverse=True)

    # Deleting a test question is a change too; the newest run comes first in the history.
    question_id = second["questions"][0]["id"]
    assert client.delete(f"/api/v1/bots/1/test-questions/{question_id}", headers=teacher).status_code == 204
    third = settled_overview(client, teacher, 3)
    assert third["latest"]["reason"] == "questions" and third["latest"]["total"] == 3


def test_a_run_waits_until_the_change_settled_and_ingestion_finished(eapp: Flask, make_app) -> None:
    client, teacher = eapp.test_client(), token(eapp)
    upload(eapp, client, teacher, "skript.pdf", pdf(TOPICS[:3]))
    client.post("/api/v1/bots/1/test-questions", headers=teacher,
                json={"question": "Where is ATP produced?", "expected_file": "skript.pdf"})
    slow = make_app(database_url=eapp.config["SQLALCHEMY_DATABASE_URI"], ingest_threads=0,
                    test_questions_settle_seconds=30)
    with slow.app_context():
        assert svc.is_due(1) is False  # changed just now
        assert svc.is_due(1, now=utcnow() + timedelta(seconds=31)) is True
        assert svc.is_due(2, now=utcnow() + timedelta(seconds=31)) is False  # no questions there
        db.session.remove()
        db.engine.dispose()
    response = client.post("/api/v1/bots/1/materials", headers=teacher,
                           data={"file": (io.BytesIO(b"Enzymes lower activation energy. " * 20), "enzyme.txt")},
                           content_type="multipart/form-data")
    assert response.status_code == 201
    with eapp.app_context():
        assert svc.is_due(1) is False  # a file is still queued
        run_pending()
        assert svc.is_due(1) is True
        run = svc.claim_run(1)
        assert run is not None and svc.claim_run(1) is None  # the same course state is claimed once
        db.session.commit()
        svc.execute_run(run)
        db.session.commit()
        assert svc.is_due(1) is False and jobs.run_due_now(1) is None
        assert jobs.start_if_due(eapp, 1) is None


def test_question_copied_from_the_logs_is_labelled_scrubbed_and_unlinked(eapp: Flask) -> None:
    client, teacher = eapp.test_client(), token(eapp)
    upload(eapp, client, teacher, "skript.pdf", pdf(TOPICS[:2]))
    response = client.post("/api/v1/bots/1/test-questions", headers=teacher,
                           json={"question": "Wie entsteht ATP? Mail an anna@example.edu",
                                 "expected_file": "skript.pdf", "source": "student_log"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["source"] == "student_log" and "anna@example.edu" not in body["question"]
    columns = {column.key for column in TestQuestion.__table__.columns}  # no pseudonym, message or conversation
    assert columns == {"id", "bot_id", "question", "expected_file", "expected_page", "source", "created_at"}


def test_only_this_courses_teachers_and_valid_questions(eapp: Flask) -> None:
    client, teacher = eapp.test_client(), token(eapp)
    upload(eapp, client, teacher, "skript.pdf", pdf(TOPICS[:2]))
    url = "/api/v1/bots/1/test-questions"
    assert client.get(url, headers=token(eapp, role="learner")).status_code == 403
    assert client.get(url, headers=token(eapp, bot_id=2)).status_code == 403
    unknown = client.post(url, headers=teacher, json={"question": "Q?", "expected_file": "other.pdf"})
    assert unknown.status_code == 400 and unknown.get_json()["error"]["code"] == "unknown_file"
    bad_page = client.post(url, headers=teacher, json={"question": "Q?", "expected_file": "skript.pdf",
                                                       "expected_page": 0})
    assert bad_page.status_code == 400 and bad_page.get_json()["error"]["code"] == "invalid_test_question"
    empty = client.post(url, headers=teacher, json={"question": " ", "expected_file": "skript.pdf"})
    assert empty.status_code == 400
    created = client.post(url, headers=teacher, json={"question": "Q?", "expected_file": "skript.pdf"}).get_json()
    other = token(eapp, bot_id=2)
    assert client.delete(f"/api/v1/bots/2/test-questions/{created['id']}", headers=other).status_code == 404
    with eapp.app_context():
        assert db.session.get(TestQuestion, created["id"]) is not None
        assert db.session.query(TestRun).count() == 0


@pytest.mark.parametrize("app", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_background_check_claims_each_run_once_on_postgresql(app: Flask) -> None:
    with app.app_context():
        for context in ("p1", "p2"):
            db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id=context, title=""))
        db.session.commit()
        for bot_id in (1, 2):
            upload_material(bot_id, "skript.pdf", pdf(TOPICS[:3]))
        db.session.commit()
        run_pending()
        for bot_id in (1, 2):
            svc.create_question(bot_id, "Where is ATP produced?", "skript.pdf", 2)
        db.session.commit()
        later = utcnow() + timedelta(seconds=31)  # the default settle delay has passed
        run = svc.claim_run(1, now=later)
        assert run is not None and svc.claim_run(1, now=later) is None
        db.session.commit()
        svc.execute_run(run)
        db.session.commit()
        assert run.found_1 == 1 and run.results[0]["rank"] == 1
        assert svc.is_due(2, now=later) is True and svc.is_due(1, now=later) is False


def test_the_background_check_runs_every_due_course_once(eapp: Flask) -> None:
    client, teacher = eapp.test_client(), token(eapp)
    upload(eapp, client, teacher, "skript.pdf", pdf(TOPICS[:3]))
    client.post("/api/v1/bots/1/test-questions", headers=teacher,
                json={"question": "Where is ATP produced?", "expected_file": "skript.pdf", "expected_page": 2})
    with eapp.app_context():
        assert jobs.check_all() == 1
        assert jobs.check_all() == 0  # nothing changed since
        run = svc.latest_run(1)
        assert run is not None and (run.total, run.found_1, run.reason) == (1, 1, "first")


def test_deleting_the_course_deletes_its_test_questions_and_runs(eapp: Flask) -> None:
    client, teacher = eapp.test_client(), token(eapp)
    upload(eapp, client, teacher, "skript.pdf", pdf(TOPICS[:2]))
    client.post("/api/v1/bots/1/test-questions", headers=teacher,
                json={"question": "Where is ATP produced?", "expected_file": "skript.pdf"})
    with eapp.app_context():
        assert jobs.run_due_now(1) is not None
        delete_bot(1, reason="teacher")
        db.session.commit()
        assert db.session.query(TestQuestion).count() == 0 and db.session.query(TestRun).count() == 0
