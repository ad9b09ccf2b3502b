"""One scoring path: the operator's ``retrieval eval`` and the teacher's test questions report the same hit figures
for the same course (the same documents, the same questions, each expecting one file)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade

from course_bots.evaluation import operations as svc
from course_bots.materials.jobs import run_pending
from course_bots.materials.operations import upload_material
from course_bots.models import CourseBot
from lti_tool.extensions import db
from retrieval.evaluate import filename_for

DOCS = {
    "bio/cells.md": ("Cells", "# Cells\n\nThe mitochondria produce ATP through cellular respiration."),
    "bio/plants": ("Plants", "Chloroplasts capture light for photosynthesis in plant leaves."),
    "bio/osmosis.md": ("Osmosis", "# Osmosis\n\nWater crosses a membrane towards the higher solute concentration."),
    "bio/enzymes": ("Enzymes", "Enzymes lower the activation energy; the cell uses ATP and light sensors."),
    "bio/dna.md": ("DNA", "# DNA\n\nThe double helix stores genes; ribosomes read messenger RNA copies."),
    "bio/ecology": ("Ecology", "Plants, water and light shape an ecosystem; leaves fall in autumn."),
}
QUERIES = {  # query -> the document that should answer it (some are meant to be hard)
    "Which organelle produces ATP?": "bio/cells.md",
    "How do leaves capture light?": "bio/plants",
    "water and light in plants": "bio/osmosis.md",
    "What reads messenger RNA?": "bio/dna.md",
    "energy of the cell": "bio/enzymes",
}


@pytest.fixture
def lapp(make_app, tmp_path: Path) -> Iterator[Flask]:
    app = make_app(database_url=f"sqlite:///{tmp_path / 'teacher.sqlite3'}", ingest_threads=0,
                   embedding_model="hashing", test_questions_settle_seconds=0)
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="bio", title="Bio"))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def write_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(
        json.dumps({"_id": doc_id, "title": title, "text": text, "course_id": "bio"})
        for doc_id, (title, text) in DOCS.items()))
    (root / "queries.jsonl").write_text("\n".join(
        json.dumps({"_id": f"q{i}", "text": text, "course_id": "bio"}) for i, text in enumerate(QUERIES)))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{i}\t{doc_id}\t1\n" for i, doc_id in enumerate(QUERIES.values())))
    return root


def test_cli_and_teacher_view_give_the_same_hit_figures(lapp: Flask, tmp_path: Path) -> None:
    result = lapp.test_cli_runner().invoke(args=["retrieval", "eval", str(write_beir(tmp_path / "beir")), "--json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)
    assert cli["queries"] == len(QUERIES)

    with lapp.app_context():  # the same course, as a teacher builds it: the files, then one test question each
        for doc_id, (title, text) in DOCS.items():
            upload_material(1, filename_for(doc_id), text.encode("utf-8"), title=title)
        db.session.commit()
        run_pending()
        for text, doc_id in QUERIES.items():
            svc.create_question(1, text, filename_for(doc_id))
        db.session.commit()
        time.sleep(0.01)
        run = svc.run_due(1)
        db.session.commit()
        assert run is not None and run.total == len(QUERIES)
        teacher = {f"hit@{k}": round(getattr(run, f"found_{k}") / run.total, 4) for k in (1, 3, 5)}
        assert teacher == {key: cli[key] for key in ("hit@1", "hit@3", "hit@5")}
        assert run.mrr == cli["mrr@10"]
        assert cli["hit@1"] < 1.0  # the set is not trivial: the figures compared are not all "everything found"
