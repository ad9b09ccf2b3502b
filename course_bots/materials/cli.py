"""``flask --app lti_tool materials ...``: ingest files into a course from the shell, list them, run a worker."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from course_bots.materials import calibration
from course_bots.materials import jobs as ingest_worker
from course_bots.materials import operations as svc
from course_bots.materials.course_index import get_embedder
from course_bots.materials.rq_worker import supervise
from course_bots.materials.jobs import recover_stale, reindex_for_current_model, run_pending
from course_bots.materials.pipeline import process_material
from course_bots.models import CourseBot
from lti_tool.extensions import db
from retrieval.fusion import model_key

materials_cli = AppGroup("materials", help="Course materials: ingest, list, work the ingestion queue.")


def _bot_or_fail(bot_id: int) -> None:
    if db.session.get(CourseBot, bot_id) is None:
        raise click.ClickException(f"No course bot with id {bot_id} (a course gets one on its first launch).")


@materials_cli.command("ingest")
@click.argument("bot_id", type=int)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--queue", is_flag=True, help="Only queue the files for the workers instead of ingesting here.")
def ingest_command(bot_id: int, files: tuple[Path, ...], queue: bool) -> None:
    """Upload FILES into course BOT_ID and ingest them here, with a progress bar."""
    _bot_or_fail(bot_id)
    queued: list[tuple[Path, int]] = []
    failures = 0
    for path in files:
        try:
            result = svc.upload_material(bot_id, path.name, path.read_bytes())
        except svc.MaterialError as exc:
            db.session.rollback()
            click.echo(f"{path.name}: {exc.message}", err=True)
            failures += 1
            continue
        db.session.commit()
        if result.queued:
            queued.append((path, result.material.id))
        else:
            click.echo(f"{path.name}: unchanged, already ingested (material {result.material.id})")
    if queue:
        ingest_worker.dispatch([mid for _, mid in queued])
        click.echo(f"queued {len(queued)} file(s)")
        raise SystemExit(1 if failures else 0)
    me = ingest_worker.worker_id("cli")
    with click.progressbar(queued, label="Ingesting", item_show_func=lambda item: item[0].name if item else "",
                           show_pos=True) as bar:
        for path, material_id in bar:
            process_material(material_id, me)
    for path, material_id in queued:
        material = svc.get_material(bot_id, material_id)
        if material is None:
            continue
        if material.status == "ready":
            click.echo(f"{path.name}: ready, {material.pages or 0} page(s), {material.chunk_count} chunk(s)")
        else:
            failures += 1
            click.echo(f"{path.name}: failed: {material.error_message}", err=True)
    raise SystemExit(1 if failures else 0)


@materials_cli.command("list")
@click.argument("bot_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(bot_id: int, as_json: bool) -> None:
    """List the materials of course BOT_ID with status and progress."""
    _bot_or_fail(bot_id)
    items = [svc.material_json(m) for m in svc.list_materials(bot_id)]
    if as_json:
        click.echo(json.dumps({"materials": items}, ensure_ascii=False))
        return
    click.echo(f"{'id':>6}  {'status':<10} {'progress':>9} {'pages':>5} {'chunks':>6}  file")
    for m in items:
        progress = f"{m['progress']['done']}/{m['progress']['total']}"
        line = f"{m['id']:>6}  {m['status']:<10} {progress:>9} {m['pages'] or '':>5} {m['chunks']:>6}  {m['filename']}"
        if m["error"]:
            line += f"  ({m['error']['message']})"
        click.echo(line)


@materials_cli.command("work")
@click.option("--once", is_flag=True, help="Process what is queued now, then exit.")
@click.option("--poll", default=5.0, show_default=True, help="Seconds between looks at an empty queue.")
def work_command(once: bool, poll: float) -> None:
    """Work the ingestion queue in this process (an alternative to RQ when threads are off)."""
    reindex_for_current_model()
    while True:
        recover_stale()
        done = run_pending(kind="cli")
        if done:
            click.echo(f"ingested {done} material(s)")
        if once:
            return
        db.session.remove()
        time.sleep(poll)


@materials_cli.command("rq-worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty (while Redis answers).")
def rq_worker_command(burst: bool) -> None:
    """Run an RQ ingestion worker that waits for Redis and starts again when Redis went away and came back."""
    url = current_app.extensions["coursebots.config"].redis_url
    if not url:
        raise click.ClickException("COURSEBOTS_REDIS_URL is not set: use `materials work` or in-process threads.")
    restarts = supervise(url, current_app._get_current_object(), burst=burst)  # type: ignore[attr-defined]
    click.echo(f"worker stopped after {restarts} restart(s)")


@materials_cli.command("reindex-outdated")
def reindex_outdated_command() -> None:
    """Queue every material embedded with another model than the configured one."""
    ids = reindex_for_current_model()
    click.echo(f"queued {len(ids)} material(s) for re-indexing")


@materials_cli.command("calibrate")
def calibrate_command() -> None:
    """Measure the "covered" calibration of the configured embedding model on this installation's passages."""
    embedder = get_embedder()
    if not calibration.needs_calibration(embedder.model_id):
        click.echo(f"{model_key(embedder.model_id)} has measured settings (retrieval.fusion.TUNED); nothing to do")
        return
    result = calibration.calibrate(embedder)
    calibration.remember(embedder.model_id, result)
    if not result.measured:
        raise click.ClickException(
            f"too little text to calibrate: {result.passages} ready passages in {result.courses} course(s); it needs "
            "passages of at least two sentences from two courses. The defaults apply until then.")
    click.echo(f"{model_key(embedder.model_id)}: dense floor {result.config.dense_floor:.3f}, "
               f"ceiling {result.config.dense_ceiling:.3f} (from {result.passages} passages of {result.courses} "
               "courses; every process measures the same on its first search)")
