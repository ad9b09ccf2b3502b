"""A deleted material's stored file goes only once the deletion commits: a failed commit keeps the row and its file."""
from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from course_bots.materials.jobs import run_pending
from course_bots.materials.models import Material
from course_bots.materials.storage import StorageError, current_storage
from course_bots.privacy.operations import delete_bot
from lti_tool.extensions import db
from tests.db_faults import connection_dies_before_commit, teacher

NOTES = b"# Osmosis\n\n" + b"Water moves across a semipermeable membrane towards higher solute concentration. " * 8


def upload(app: Flask) -> tuple[int, str]:
    """Upload and ingest one file as the teacher of course 1; its material id and storage key."""
    response = app.test_client().post("/api/v1/bots/1/materials", headers=teacher(app),
                                      data={"file": (io.BytesIO(NOTES), "notes.md")},
                                      content_type="multipart/form-data")
    material_id = response.get_json()["materials"][0]["id"]
    with app.app_context():
        run_pending()
        material = db.session.get(Material, material_id)
        assert material is not None
        return material_id, material.storage_key


def stored(app: Flask, key: str) -> bool:
    """Whether the file store still holds the key."""
    with app.app_context():
        try:
            return current_storage().get(key) == NOTES
        except StorageError:
            return False


def listed(app: Flask) -> list[int]:
    """Material ids the teacher's list shows for course 1."""
    answer = app.test_client().get("/api/v1/bots/1/materials", headers=teacher(app))
    return [m["id"] for m in answer.get_json()["materials"]]


def delete(app: Flask, material_id: int) -> int:
    """The status of the teacher's DELETE of one material."""
    return app.test_client().delete(f"/api/v1/bots/1/materials/{material_id}", headers=teacher(app)).status_code


def failing_commit(session: Session) -> None:
    raise RuntimeError("the commit failed")


@pytest.mark.parametrize("storage", ["instance", "database"])
def test_a_failed_commit_keeps_row_and_file_then_a_delete_removes_both(course: Callable[..., Flask],
                                                                       storage: str) -> None:
    app = course(storage=storage)
    material_id, key = upload(app)
    event.listen(db.session, "before_commit", failing_commit)
    try:
        assert delete(app, material_id) == 500
    finally:
        event.remove(db.session, "before_commit", failing_commit)
    assert listed(app) == [material_id] and stored(app, key)

    assert delete(app, material_id) == 204
    assert listed(app) == [] and not stored(app, key)


@pytest.mark.postgres
def test_a_connection_lost_at_commit_keeps_row_and_file(course: Callable[..., Flask],
                                                        postgres_server_url: str) -> None:
    app = course(database="postgresql")
    material_id, key = upload(app)
    with app.app_context(), connection_dies_before_commit(postgres_server_url) as killed:
        status = delete(app, material_id)
    assert killed and status == 503  # the database went away: try again shortly
    assert listed(app) == [material_id] and stored(app, key)

    assert delete(app, material_id) == 204  # the pool replaced the dead connection
    assert listed(app) == [] and not stored(app, key)


def test_a_deleted_bot_keeps_its_files_until_the_deletion_commits(course: Callable[..., Flask]) -> None:
    app = course()
    _, key = upload(app)
    with app.app_context():
        delete_bot(1, reason="test")
        db.session.rollback()
        assert db.session.scalars(select(Material.id).filter_by(bot_id=1)).all()
    assert stored(app, key)
    with app.app_context():
        delete_bot(1, reason="test")
        db.session.commit()
    assert not stored(app, key)
