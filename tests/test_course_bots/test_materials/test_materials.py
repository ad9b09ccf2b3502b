"""Course materials as a teacher uses them: upload, status, idempotent re-upload, deletion, storage backends."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

import numpy as np
import pytest
from flask import Flask
from sqlalchemy import func, select

from course_bots.models import CourseBot
from course_bots.materials.models import Material, MaterialBlob, MaterialChunk
from course_bots.materials import course_index
from course_bots.materials import operations as svc
from course_bots.materials.jobs import run_pending
from course_bots.materials.storage import DatabaseStorage, InstanceStorage, StorageError
from course_bots.privacy.operations import delete_bot
from lti_tool.extensions import db
from retrieval.embedders import HashingEmbedder
from retrieval.types import Vector
from tests.conftest import reset_postgres

PAGES = [
    "Photosynthesis converts light energy into chemical energy in chloroplasts of plant cells. " * 6,
    "The Krebs cycle oxidises acetyl-CoA to carbon dioxide inside the mitochondria. " * 6,
    "Mitosis divides one nucleus into two genetically identical nuclei in four phases. " * 6,
]

T = TypeVar("T")


def _get(model: type[T], ident: object) -> T:
    """A row that must exist (typed, for mypy)."""
    found = db.session.get(model, ident)
    assert found is not None
    return found


def make_pdf(pages: Sequence[str]) -> bytes:
    """A text PDF with one page per string (reportlab)."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for text in pages:
        y = 800
        for line in textwrap.wrap(text, 90):
            pdf.drawString(40, y, line)
            y -= 14
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_docx(sections: Sequence[tuple[str, str]]) -> bytes:
    """A Word file with a level-1 heading and a paragraph per section (python-docx)."""
    import docx

    document = docx.Document()
    for heading, text in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


NOTES = [("Alpha", "Alpha beta gamma. " * 30), ("Delta", "Delta epsilon zeta. " * 30)]


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting how many passages it embedded."""

    def __init__(self) -> None:
        super().__init__(64)
        self.passages = 0

    def embed_passages(self, texts: Sequence[str]) -> Vector:
        self.passages += len(texts)
        return super().embed_passages(texts)


@pytest.fixture(params=["sqlite"])
def mapp(request: pytest.FixtureRequest, make_app, tmp_path: Path) -> Iterator[Flask]:
    """An app migrated to head, no ingestion threads (tests run the queue), a counting embedder."""
    from flask_migrate import upgrade

    url = f"sqlite:///{tmp_path / 'materials.sqlite3'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_database")
        reset_postgres(url)
    overrides = dict(getattr(request, "overrides", {}) or {})
    app = make_app(database_url=url, ingest_threads=0, embedding_model="hashing", **overrides)
    app.extensions["coursebots.embedder"] = CountingEmbedder()
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title="Bio"))
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c2", title="Chem"))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def embedder_of(app: Flask) -> CountingEmbedder:
    return app.extensions["coursebots.embedder"]


def upload(app: Flask, name: str, data: bytes, bot_id: int = 1) -> svc.UploadResult:
    with app.app_context():
        result = svc.upload_material(bot_id, name, data)
        db.session.commit()
        result.material.id  # load before the session closes
        return result


def material(app: Flask, material_id: int) -> dict[str, object]:
    with app.app_context():
        m = _get(Material, material_id)
        return svc.material_json(m) if m is not None else {}


@pytest.mark.parametrize("mapp", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_pdf_ingests_with_pages_and_vectors_in_the_database(mapp: Flask) -> None:
    result = upload(mapp, "Lecture 1.pdf", make_pdf(PAGES))
    assert result.queued and material(mapp, result.material.id)["status"] == "queued"
    with mapp.app_context():
        assert run_pending() == 1
        m = _get(Material, result.material.id)
        assert (m.status, m.pages, m.error_code) == ("ready", 3, None)
        assert m.chunk_count >= 3 and m.progress_done == m.progress_total > 0
        chunks = db.session.scalars(select(MaterialChunk).filter_by(material_id=m.id)
                                    .order_by(MaterialChunk.ordinal)).all()
        assert [c.position for c in chunks][:1] == [1] and chunks[-1].position_end == 3
        vector = np.frombuffer(chunks[0].vector or b"", dtype="<f4")
        assert vector.shape == (64,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
        assert chunks[0].embedding_model == "hashing-64"


def test_unchanged_reupload_embeds_nothing_and_changed_file_reuses_unchanged_passages(mapp: Flask) -> None:
    data = make_docx(NOTES)
    first = upload(mapp, "notes.docx", data)
    with mapp.app_context():
        run_pending()
    embedded = embedder_of(mapp).passages
    assert embedded > 0
    again = upload(mapp, "notes.docx", data)
    assert again.material.id == first.material.id and not again.queued
    with mapp.app_context():
        assert run_pending() == 0
    assert embedder_of(mapp).passages == embedded
    # A changed file: one new paragraph; the unchanged passages keep their vectors, the old version goes.
    changed = upload(mapp, "notes.docx", make_docx(NOTES + [("Eta", "A brand new paragraph about eta theta. " * 10)]))
    assert changed.queued and changed.material.id != first.material.id
    with mapp.app_context():
        run_pending()
        assert db.session.get(Material, first.material.id) is None
        new = _get(Material, changed.material.id)
        assert new.status == "ready" and new.replaces_id is None
    assert new.chunk_count == 3 and embedder_of(mapp).passages - embedded == 1


def test_versions_uploaded_in_quick_succession_leave_only_the_newest(mapp: Flask) -> None:
    ids = [upload(mapp, "notes.md", f"# V{i}\n\nVersion {i} of the notes.".encode()).material.id for i in range(3)]
    with mapp.app_context():
        run_pending()
        assert [m.id for m in svc.list_materials(1)] == [ids[-1]]


def test_same_file_in_another_course_reuses_vectors(mapp: Flask) -> None:
    data = make_docx(NOTES)
    upload(mapp, "notes.docx", data, bot_id=1)
    with mapp.app_context():
        run_pending()
    embedded = embedder_of(mapp).passages
    copy = upload(mapp, "notes.docx", data, bot_id=2)
    assert copy.queued  # a material of its own in the other course
    with mapp.app_context():
        run_pending()
        assert _get(Material, copy.material.id).status == "ready"
    assert embedder_of(mapp).passages == embedded


def test_bad_file_fails_with_teacher_message_and_does_not_stop_the_others(mapp: Flask) -> None:
    broken = upload(mapp, "broken.pdf", b"%PDF-1.4\n" + b"garbage " * 200)
    good = upload(mapp, "good.md", "# Topic\n\nEnzymes lower the activation energy of reactions.".encode())
    with mapp.app_context():
        assert run_pending() == 2
    failed = material(mapp, broken.material.id)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "corrupt" and "damaged" in failed["error"]["message"]  # type: ignore[index]
    assert material(mapp, good.material.id)["status"] == "ready"


def test_upload_limits_and_types(mapp: Flask, make_app) -> None:
    with mapp.app_context():
        with pytest.raises(svc.MaterialError) as empty:
            svc.upload_material(1, "empty.txt", b"   \n")
        assert empty.value.code == "empty"
        with pytest.raises(svc.MaterialError) as unsupported:
            svc.upload_material(1, "sheet.exe", b"MZ\x90\x00" + b"\x00" * 100)
        assert unsupported.value.code == "unsupported_type" and unsupported.value.status == 415
    small = make_app(database_url=mapp.config["SQLALCHEMY_DATABASE_URI"], max_upload_mb=1, max_course_mb=2,
                     ingest_threads=0, embedding_model="hashing")
    with small.app_context():
        with pytest.raises(svc.MaterialError) as big:
            svc.upload_material(1, "big.txt", b"word " * 300_000)
        assert big.value.code == "too_large" and "limit is 1 MB" in big.value.message
        svc.upload_material(1, "a.txt", b"alpha " * 160_000)  # 960,000 bytes: under 1 MB (10^6 bytes)
        svc.upload_material(1, "b.txt", b"beta " * 200_000)
        with pytest.raises(svc.MaterialError) as quota:
            svc.upload_material(1, "c.txt", b"gamma " * 150_000)
        assert quota.value.code == "course_quota"
        db.session.rollback()


def test_filenames_are_sanitised_for_display() -> None:
    assert svc.sanitise_filename("../../etc/Übung 1.pdf") == "Übung 1.pdf"
    assert svc.sanitise_filename("C:\\Users\\x\\Folien\x00.pptx") == "Folien.pptx"
    assert svc.sanitise_filename("") == "upload"
    assert len(svc.sanitise_filename("a" * 500 + ".pdf")) <= 200


def test_delete_removes_chunks_and_file(mapp: Flask) -> None:
    result = upload(mapp, "Lecture.pdf", make_pdf(PAGES))
    stored = Path(mapp.instance_path) / "materials" / result.material.storage_key
    assert stored.exists()
    with mapp.app_context():
        run_pending()
        version = course_index.index_version(1)
        svc.delete_material(_get(Material, result.material.id))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(MaterialChunk)) == 0
        assert course_index.index_version(1) == version + 1
    assert not stored.exists()


def test_reindex_after_model_change_queues_outdated_materials(mapp: Flask) -> None:
    result = upload(mapp, "n.md", b"# Cells\n\nCells are the basic unit of life.")
    with mapp.app_context():
        run_pending()
        assert svc.reindex_outdated("hashing-64") == []
        mapp.extensions["coursebots.embedder"] = HashingEmbedder(32)
        assert svc.reindex_outdated("hashing-32") == [result.material.id]
        db.session.commit()
        run_pending()
        chunk = db.session.scalars(select(MaterialChunk)).one()
        assert chunk.embedding_model == "hashing-32" and len(chunk.vector or b"") == 32 * 4


def test_instance_storage_refuses_escaping_keys(tmp_path: Path) -> None:
    storage = InstanceStorage(tmp_path)
    storage.put("1/abc", b"data")
    assert storage.get("1/abc") == b"data"
    storage.delete("1/abc")
    storage.delete("1/abc")
    with pytest.raises(StorageError):
        storage.get("1/abc")
    with pytest.raises(StorageError):
        storage.put("../outside", b"x")


@pytest.mark.parametrize("mapp", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_database_storage_keeps_originals_in_the_database(mapp: Flask, make_app) -> None:
    app = make_app(database_url=mapp.config["SQLALCHEMY_DATABASE_URI"], storage="database", ingest_threads=0,
                   embedding_model="hashing")
    app.extensions["coursebots.embedder"] = CountingEmbedder()
    data = make_pdf(PAGES[:1])
    result = upload(app, "db.pdf", data)
    with app.app_context():
        assert _get(MaterialBlob, result.material.storage_key).data == data
        run_pending()
        assert _get(Material, result.material.id).status == "ready"
        svc.delete_material(_get(Material, result.material.id))
        db.session.commit()
        assert db.session.get(MaterialBlob, result.material.storage_key) is None
    assert DatabaseStorage.name == "database"


def test_deleting_a_bot_removes_its_stored_files(mapp: Flask) -> None:
    result = upload(mapp, "Lecture.pdf", make_pdf(PAGES))
    stored = Path(mapp.instance_path) / "materials" / result.material.storage_key
    with mapp.app_context():
        run_pending()
        delete_bot(1, reason="test")
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(MaterialChunk)) == 0
        assert db.session.scalar(select(func.count()).select_from(Material)) == 0
    assert not stored.exists()
