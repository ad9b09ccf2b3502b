"""An embedding model without tuned settings is calibrated on the installation's own passages, in the background."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade

from course_bots.materials import calibration
from course_bots.materials import operations as svc
from course_bots.materials.course_index import get_cache, search_course
from course_bots.materials.jobs import run_pending
from course_bots.models import CourseBot
from lti_tool.extensions import db
from retrieval.embedders import HashingEmbedder
from retrieval.fusion import FusionConfig

UNTUNED = "acme/campus-embedder-large"

TOPICS = {
    "c1": ["Photosynthesis converts light energy into chemical energy. It happens in the chloroplasts of leaves. "
           "Chlorophyll absorbs mostly red and blue light.",
           "The Calvin cycle fixes carbon dioxide into sugar. It needs the ATP made by the light reactions. "
           "Rubisco is the enzyme that binds the carbon dioxide."],
    "c2": ["A compiler translates source code into machine code. Its front end parses the program text. "
           "The back end allocates registers and emits instructions.",
           "Garbage collection frees memory that no reference reaches. A mark phase finds the live objects. "
           "A sweep phase returns the rest to the allocator."],
}


class UntunedEmbedder(HashingEmbedder):
    """The hashing embedder under the name of a model that has no entry in ``retrieval.fusion.TUNED``."""

    @property
    def model_id(self) -> str:
        """A model an admin might name."""
        return UNTUNED


def _join_calibration() -> None:
    """Wait for this process's background calibration thread, if one runs."""
    for thread in threading.enumerate():
        if thread.name == "coursebots-calibration":
            thread.join()


@pytest.fixture
def capp(make_app, tmp_path: Path) -> Iterator[Flask]:
    """Two courses whose materials were embedded with the untuned model."""
    calibration.forget()
    app = make_app(database_url=f"sqlite:///{tmp_path / 'cal.sqlite3'}", ingest_threads=0, embedding_model="hashing")
    app.extensions["coursebots.embedder"] = UntunedEmbedder()
    with app.app_context():
        upgrade()
        for number, (context, pages) in enumerate(TOPICS.items(), start=1):
            db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id=context, title=""))
            db.session.flush()
            for page_number, text in enumerate(pages * 4):  # enough two-sentence passages to sample
                svc.upload_material(number, f"notes-{page_number}.md", f"# Part {page_number}\n\n{text}".encode())
        db.session.commit()
        run_pending()
    yield app
    calibration.forget()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_tuned_models_and_the_test_fake_are_not_calibrated() -> None:
    assert not calibration.needs_calibration("intfloat/multilingual-e5-small|onnx-int4")
    assert not calibration.needs_calibration("sentence-transformers/all-MiniLM-L6-v2")
    assert not calibration.needs_calibration("hashing-256")
    assert calibration.needs_calibration(UNTUNED)


def test_first_search_serves_defaults_then_the_measured_settings(capp: Flask) -> None:
    with capp.app_context():
        search_course(1, "Where does photosynthesis happen?")
        index = get_cache()._entries[1].index
        _join_calibration()
        measured = calibration.current(UNTUNED)
        assert measured is not None
        # The measurement is the library's procedure on the stored passages and vectors, nothing else.
        expected = calibration.calibrate(UntunedEmbedder())
        assert measured == expected.config and expected.courses == 2
        assert (measured.dense_floor, measured.dense_ceiling) != (FusionConfig().dense_floor,
                                                                  FusionConfig().dense_ceiling)
        # The index built before the measurement finished now uses it; a new index is built with it.
        assert index.config == measured
        get_cache().invalidate()
        search_course(2, "What does a compiler do?")
        assert get_cache()._entries[2].index.config == measured


def test_one_course_is_too_little_to_calibrate(make_app, tmp_path: Path) -> None:
    calibration.forget()
    app = make_app(database_url=f"sqlite:///{tmp_path / 'one.sqlite3'}", ingest_threads=0, embedding_model="hashing")
    app.extensions["coursebots.embedder"] = UntunedEmbedder()
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title=""))
        db.session.commit()
        svc.upload_material(1, "notes.md", ("# Notes\n\n" + TOPICS["c1"][0]).encode())
        db.session.commit()
        run_pending()
        result = calibration.calibrate(UntunedEmbedder())
        assert not result.measured and result.config == FusionConfig()
        db.session.remove()
        db.engine.dispose()


def test_cli_prints_the_measured_values(capp: Flask) -> None:
    result = capp.test_cli_runner().invoke(args=["materials", "calibrate"])
    assert result.exit_code == 0, result.output
    with capp.app_context():
        config = calibration.current(UNTUNED)
        assert config is not None
        assert f"dense floor {config.dense_floor:.3f}" in result.output
