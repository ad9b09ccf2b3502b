"""Fuzz the JSON API of docs/openapi.yaml (schemathesis, in-process WSGI) and print the share of 2xx answers.

Every operation gets ``--examples`` generated requests (Hypothesis' derandomized seed: the same requests every
run), each sent once with a teacher's and once with a student's valid session token of the one course; the
``bot_id`` of every path is that course's. Prints answers per status class, per operation, and every 5xx or
traceback (the test ``tests/test_fuzz/test_api_fuzz.py`` asserts there are none).

Usage: ``python bench/faults/api_fuzz.py --examples 25`` (SQLite in a temporary folder; ``--database-url`` for
PostgreSQL).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Build a migrated app with one course, fuzz it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=25, help="generated requests per operation and role")
    parser.add_argument("--operations", default=None, help="only operations whose path contains this")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    import logging

    from flask_migrate import upgrade

    from lti_tool import create_app
    from lti_tool.extensions import db
    from tests.conftest import make_config
    from tests.test_course_bots.conftest import bearer, make_bot, make_session
    from tests.test_fuzz.api_fuzz import fuzz

    logging.disable(logging.WARNING)  # the app logs every refused request; the figures are what matters here
    app = create_app(make_config(Path(tempfile.mkdtemp(prefix="api-fuzz-")), args.database_url))
    with app.app_context():
        upgrade()
        bot = make_bot()
        headers = {"teacher": bearer(make_session(bot, sub="teacher-1", roles=("instructor",))),
                   "student": bearer(make_session(bot, sub="student-1"))}
        bot_id = bot.id
        db.session.remove()
    started = time.perf_counter()
    result = fuzz(app, bot_id, headers, examples=args.examples, operations=args.operations)
    seconds = time.perf_counter() - started
    print(f"{result.total} requests ({len(result.by_operation)} operations x {args.examples} examples x 2 roles) "
          f"in {seconds:.0f} s")
    for status_class in sorted(result.statuses):
        print(f"  {status_class}: {result.statuses[status_class]:5d}  {100 * result.share(status_class):5.1f} %")
    print("per operation (status: count):")
    for label, counts in sorted(result.by_operation.items()):
        print(f"  {label:60s} " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"5xx or traceback: {len(result.failures)}")
    for failure in result.failures:
        print("  " + failure)
    raise SystemExit(1 if result.failures else 0)


if __name__ == "__main__":
    main()
