"""CLI: ``materials ingest/list/work`` and ``retrieval eval DIR --json`` in a temporary database."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func, select

from course_bots.models import CourseBot
from course_bots.materials.models import Material
from lti_tool.extensions import db


@pytest.fixture
def lapp(make_app, tmp_path: Path) -> Iterator[Flask]:
    app = make_app(database_url=f"sqlite:///{tmp_path / 'cli.sqlite3'}", ingest_threads=0, embedding_model="hashing")
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id="c1", title=""))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_ingest_and_list(lapp: Flask, tmp_path: Path) -> None:
    good = tmp_path / "Kapitel 1.md"
    good.write_text("# Kapitel 1\n\n" + "Neuronale Netze lernen Gewichte durch Gradientenabstieg. " * 10)
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n" + b"garbage " * 50)
    runner = lapp.test_cli_runner()
    result = runner.invoke(args=["materials", "ingest", "1", str(good), str(bad)])
    assert result.exit_code == 1  # one file failed
    assert "Kapitel 1.md: ready" in result.output and "broken.pdf: failed: This file is damaged" in result.output
    again = runner.invoke(args=["materials", "ingest", "1", str(good)])
    assert again.exit_code == 0 and "unchanged, already ingested" in again.output
    listing = runner.invoke(args=["materials", "list", "1"])
    assert "ready" in listing.output and "Kapitel 1.md" in listing.output and "failed" in listing.output
    as_json = json.loads(runner.invoke(args=["materials", "list", "1", "--json"]).output)
    assert sorted(m["status"] for m in as_json["materials"]) == ["failed", "ready"]
    assert runner.invoke(args=["materials", "list", "99"]).exit_code != 0


def test_queue_then_work(lapp: Flask, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Enzymes are biological catalysts. " * 20)
    runner = lapp.test_cli_runner()
    assert runner.invoke(args=["materials", "ingest", "1", str(path), "--queue"]).exit_code == 0
    with lapp.app_context():
        assert db.session.scalar(select(Material.status)) == "queued"
    worked = runner.invoke(args=["materials", "work", "--once"])
    assert worked.exit_code == 0 and "ingested 1 material(s)" in worked.output
    with lapp.app_context():
        assert db.session.scalar(select(Material.status)) == "ready"


def test_worker_reembeds_after_the_model_changed(lapp: Flask, tmp_path: Path, make_app) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Enzymes are biological catalysts. " * 20)
    assert lapp.test_cli_runner().invoke(args=["materials", "ingest", "1", str(path)]).exit_code == 0
    changed = make_app(database_url=lapp.config["SQLALCHEMY_DATABASE_URI"], ingest_threads=0,
                       embedding_model="hashing-32")
    result = changed.test_cli_runner().invoke(args=["materials", "work", "--once"])
    assert result.exit_code == 0 and "ingested 1 material(s)" in result.output
    with changed.app_context():
        assert db.session.scalar(select(Material.embedding_model)) == "hashing-32"
        db.session.remove()
        db.engine.dispose()


def write_beir(root: Path) -> Path:
    """A hand-checked toy set: two courses, each query has one relevant document in its own course."""
    corpus = [
        {"_id": "bio/cells.md", "title": "Cells", "course_id": "bio",
         "text": "# Cells\n\nThe mitochondria produce ATP through cellular respiration."},
        {"_id": "bio/plants", "title": "Plants", "course_id": "bio",
         "text": "Chloroplasts capture light for photosynthesis in plant leaves."},
        {"_id": "cs/sort", "title": "Sorting", "course_id": "cs",
         "text": "Quicksort partitions an array around a pivot element recursively."},
        {"_id": "cs/graphs", "title": "Graphs", "course_id": "cs",
         "text": "Dijkstra's algorithm finds shortest paths in weighted graphs."},
    ]
    queries = [
        {"_id": "q1", "text": "Which organelle produces ATP?", "course_id": "bio"},
        {"_id": "q2", "text": "How does quicksort use a pivot?", "course_id": "cs"},
        {"_id": "q3", "text": "shortest paths weighted graphs", "course_id": "cs"},
    ]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tbio/cells.md\t1\n"
                                             "q2\tcs/sort\t1\nq3\tcs/graphs\t1\n")
    return root


def test_retrieval_eval_json_in_a_temporary_database(lapp: Flask, tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "toy")
    runner = lapp.test_cli_runner()
    result = runner.invoke(args=["retrieval", "eval", str(beir), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    for key in ("queries", "chunks", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "latency_ms_p50",
                "latency_ms_p95", "ingest_seconds", "model_load_seconds", "config"):
        assert key in metrics
    assert metrics["queries"] == 3 and metrics["chunks"] == 4
    assert metrics["recall@1"] == 1.0 and metrics["mrr@10"] == 1.0
    assert metrics["config"]["embedder"] == "hashing-256" and metrics["config"]["fusion"]["mode"] == "hybrid"
    with lapp.app_context():  # the configured database was not touched
        assert db.session.scalar(select(func.count()).select_from(Material)) == 0
        assert db.session.scalar(select(func.count()).select_from(CourseBot)) == 1
    several = json.loads(runner.invoke(args=["retrieval", "eval", str(beir), "--json", "--mode", "bm25",
                                             "--mode", "dense"]).output)
    assert set(several["modes"]) == {"bm25", "dense"} and several["modes"]["bm25"]["queries"] == 3
