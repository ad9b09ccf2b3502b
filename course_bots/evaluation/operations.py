"""Test questions: the teacher's list, when a run is due, and one run (the course's own search, the chat's threshold).

A run is due when the course changed since the last run (its index version, its settings or its questions: the
run's *stamp*), the change is older than ``COURSEBOTS_TEST_QUESTIONS_SETTLE_SECONDS`` and no file of the course
is still being ingested. Runs search through :func:`course_bots.materials.operations.search_course` (the index the
students' questions use) and are scored by :func:`retrieval.evaluate.first_rank` and
:func:`retrieval.evaluate.hit_figures`, the scoring of the operator's ``retrieval eval``. Services only ``flush()``.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from course_bots.chat import operations as chat
from course_bots.errors import ServiceError
from course_bots.evaluation.models import QuestionSource, RunStatus, TestQuestion, TestRun
from course_bots.materials import operations as materials
from course_bots.materials.models import CourseIndexVersion, Material, MaterialStatus
from course_bots.privacy_rules import scrub
from course_bots.settings.models import BotSettings
from lti_tool.extensions import current_config, db, utcnow
from retrieval.evaluate import HIT_KS, SEARCH_DEPTH, first_rank, hit_figures
from retrieval.types import Chunk

log = logging.getLogger(__name__)

CHAT_SOURCES = 8  # the hits the chat's answer looks at (chat.operations.answer searches 8)
DEPTH = 10  # ranks are kept to 10, so the reciprocal rank is the CLI's mrr@10
HISTORY = 20
MAX_QUESTIONS = 200
STALE_RUN = timedelta(minutes=10)
BUSY = (MaterialStatus.QUEUED, *MaterialStatus.ACTIVE)


class EvaluationError(ServiceError):
    """A test question the teacher must fix (400 unless told)."""


# --- the teacher's list ----------------------------------------------------------------------------------------

def course_files(bot_id: int) -> list[str]:
    """The file names a test question can expect: the course's materials that did not fail, sorted."""
    names = db.session.scalars(select(Material.filename).where(Material.bot_id == bot_id,
                                                               Material.status != MaterialStatus.FAILED)
                               .distinct())
    return sorted(set(names), key=str.casefold)


def list_questions(bot_id: int) -> list[TestQuestion]:
    """The course's test questions, oldest first."""
    return list(db.session.scalars(select(TestQuestion).filter_by(bot_id=bot_id).order_by(TestQuestion.id)))


def get_question(bot_id: int, question_id: int) -> TestQuestion | None:
    """One test question of this bot, or None (never another course's)."""
    question = db.session.get(TestQuestion, question_id)
    return question if question is not None and question.bot_id == bot_id else None


def create_question(bot_id: int, text: str, expected_file: str, expected_page: int | None = None,
                    source: str = QuestionSource.TEACHER) -> TestQuestion:
    """Add a test question; one copied from the logs is scrubbed again and keeps no link to its student."""
    text, expected_file = (text or "").strip(), (expected_file or "").strip()
    if not text:
        raise EvaluationError("invalid_test_question", "A test question needs its text.")
    if source not in QuestionSource.ALL:
        raise EvaluationError("invalid_test_question", "Unknown source of a test question.")
    if expected_file not in course_files(bot_id):
        raise EvaluationError("unknown_file", "Choose one of this course's files as the expected source.")
    count = db.session.scalar(select(func.count()).select_from(TestQuestion).filter_by(bot_id=bot_id)) or 0
    if count >= MAX_QUESTIONS:
        raise EvaluationError("too_many_test_questions", f"A course can have at most {MAX_QUESTIONS} test questions.")
    if source == QuestionSource.STUDENT_LOG:  # already scrubbed when stored; the browser could send anything
        text = scrub(text, (), current_config().pii_extra_patterns)
    question = TestQuestion(bot_id=bot_id, question=text, expected_file=expected_file,
                            expected_page=expected_page, source=source, created_at=utcnow())
    db.session.add(question)
    db.session.flush()
    return question


def delete_question(question: TestQuestion) -> None:
    """Remove a test question (earlier runs keep their results)."""
    db.session.delete(question)
    db.session.flush()


def question_json(question: TestQuestion) -> dict[str, Any]:
    """A test question for the API."""
    return {"id": question.id, "question": question.question, "expected_file": question.expected_file,
            "expected_page": question.expected_page, "source": question.source,
            "created_at": question.created_at.isoformat() if question.created_at else None}


# --- when a run is due -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What a run depends on, read in a few small queries: it is cheap to compare on every check."""

    index_version: int
    settings_changed_at: datetime | None
    questions_hash: str
    questions: int
    last_change: datetime | None
    ingesting: bool

    @property
    def stamp(self) -> str:
        """The run's identity: the course as this snapshot saw it."""
        settings = self.settings_changed_at.isoformat() if self.settings_changed_at else "-"
        return f"{self.index_version}|{settings}|{self.questions_hash}"


def snapshot(bot_id: int) -> Snapshot:
    """The course's index version, settings change, questions and whether a file is still being ingested."""
    index = db.session.execute(select(CourseIndexVersion.version, CourseIndexVersion.updated_at)
                               .where(CourseIndexVersion.bot_id == bot_id)).first()
    settings_at = db.session.scalar(select(BotSettings.updated_at).where(BotSettings.bot_id == bot_id))
    rows = db.session.execute(select(TestQuestion.id, TestQuestion.question, TestQuestion.expected_file,
                                     TestQuestion.expected_page, TestQuestion.created_at)
                              .where(TestQuestion.bot_id == bot_id).order_by(TestQuestion.id)).all()
    digest = hashlib.sha256(repr([tuple(row[:4]) for row in rows]).encode("utf-8")).hexdigest()[:32]
    ingesting = db.session.scalar(select(Material.id).where(Material.bot_id == bot_id,
                                                            Material.status.in_(BUSY)).limit(1)) is not None
    changes = [when for when in (index.updated_at if index else None, settings_at, *(row[4] for row in rows))
               if when is not None]
    return Snapshot(int(index.version) if index else 0, settings_at, digest, len(rows),
                    max(changes) if changes else None, ingesting)


def latest_run(bot_id: int) -> TestRun | None:
    """The course's newest run (running, done or failed), or None."""
    return db.session.scalars(select(TestRun).filter_by(bot_id=bot_id).order_by(TestRun.id.desc()).limit(1)).first()


def is_due(bot_id: int, now: datetime | None = None) -> bool:
    """Whether the course changed since its last run, the change has settled and nothing is being ingested."""
    state = snapshot(bot_id)
    return _due(bot_id, state, now or utcnow())


def _due(bot_id: int, state: Snapshot, now: datetime) -> bool:
    if not state.questions or state.ingesting:
        return False
    last = latest_run(bot_id)
    if last is not None and last.stamp == state.stamp:
        return False
    settle = timedelta(seconds=current_config().test_questions_settle_seconds)
    return state.last_change is None or state.last_change <= now - settle


def bots_with_questions() -> list[int]:
    """The courses that have test questions (what the background check looks at)."""
    return list(db.session.scalars(select(TestQuestion.bot_id).distinct().order_by(TestQuestion.bot_id)))


def claim_run(bot_id: int, now: datetime | None = None) -> TestRun | None:
    """Start a due run (inserted as running, unique per course and stamp), or None when none is due or it is taken."""
    state = snapshot(bot_id)
    if not _due(bot_id, state, now or utcnow()):
        return None
    previous = latest_run(bot_id)
    run = TestRun(bot_id=bot_id, stamp=state.stamp, index_version=state.index_version,
                  settings_changed_at=state.settings_changed_at, questions_hash=state.questions_hash,
                  reason=_reason(previous, state), status=RunStatus.RUNNING, results=[], started_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(run)
    except IntegrityError:  # another process claimed the same run meanwhile
        return None
    return run


def _reason(previous: TestRun | None, state: Snapshot) -> str:
    """What changed since the previous run, for the history line."""
    if previous is None:
        return "first"
    if previous.index_version != state.index_version:
        return "materials"
    if previous.settings_changed_at != state.settings_changed_at:
        return "settings"
    return "questions"


# --- one run ---------------------------------------------------------------------------------------------------

def check_question(question: TestQuestion, files: dict[int, str]) -> dict[str, Any]:
    """Search one test question as a student's question is searched; where its expected source ranks, and whether
    the bot would answer (the chat's threshold, no model asked)."""
    hits = materials.search_course(question.bot_id, question.question, k=SEARCH_DEPTH)
    page = question.expected_page

    def file_of(chunk: Chunk) -> str | None:
        material = materials.material_id_of(chunk)
        return files.get(material) if material is not None else None

    def item_of(chunk: Chunk) -> str | None:
        name = file_of(chunk)
        return name if page is None or name is None else f"{name}#{chunk.position}-{chunk.position_end}"

    def expected(chunk: Chunk) -> bool:
        if file_of(chunk) != question.expected_file:
            return False
        if page is None:
            return True
        first = chunk.position
        return first is not None and first <= page <= (chunk.position_end or first)

    rank = first_rank(hits, expected, item_of, depth=DEPTH)
    best = next((hit.chunk for hit in hits if file_of(hit.chunk) is not None), None)
    return {"question_id": question.id, "question": question.question, "source": question.source,
            "expected_file": question.expected_file, "expected_page": page, "rank": rank,
            "would_answer": chat.would_answer(hits[:CHAT_SOURCES]),
            "file_missing": question.expected_file not in files.values(),
            "best": ({"file": file_of(best), "page": best.position} if best is not None else None)}


def execute_run(run: TestRun) -> TestRun:
    """Check every test question of the run's course and store the figures (the view or job commits)."""
    rows = db.session.execute(select(Material.id, Material.filename).where(Material.bot_id == run.bot_id))
    files = {row.id: row.filename for row in rows}
    results = [check_question(question, files) for question in list_questions(run.bot_id)]
    figures = hit_figures([result["rank"] for result in results], HIT_KS)
    run.results = results
    run.total = len(results)
    run.found_1, run.found_3, run.found_5 = (figures[f"found@{k}"] for k in HIT_KS)
    run.mrr = figures["mrr"]
    run.answered = sum(1 for result in results if result["would_answer"])
    run.status = RunStatus.DONE
    run.finished_at = utcnow()
    db.session.flush()
    return run


def run_due(bot_id: int, now: datetime | None = None) -> TestRun | None:
    """Claim and execute a due run of one course; None when none was due. Flushes; the caller commits."""
    run = claim_run(bot_id, now)
    if run is None:
        return None
    try:
        return execute_run(run)
    except Exception:
        log.exception("test questions of bot %s could not be checked", bot_id)
        run.status = RunStatus.FAILED
        run.finished_at = utcnow()
        db.session.flush()
        return run


# --- what the teacher sees -------------------------------------------------------------------------------------

def run_json(run: TestRun, previous: TestRun | None = None, results: bool = False) -> dict[str, Any]:
    """A run's figures (and, when asked, its per-question results); ``previous_found`` is the run before's."""
    data: dict[str, Any] = {
        "id": run.id, "status": run.status, "reason": run.reason, "total": run.total,
        "found_1": run.found_1, "found_3": run.found_3, "found_5": run.found_5, "answered": run.answered,
        "mrr": run.mrr, "previous_found": previous.found_5 if previous is not None else None,
        "previous_total": previous.total if previous is not None else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None}
    if results:
        data["results"] = list(run.results or [])
    return data


def overview(bot_id: int) -> dict[str, Any]:
    """The tab's data: questions, files, the newest finished run with its results, the history, and ``pending``."""
    runs = list(db.session.scalars(select(TestRun).filter_by(bot_id=bot_id).order_by(TestRun.id.desc())
                                   .limit(HISTORY + 1)))
    done = [run for run in runs if run.status == RunStatus.DONE]
    history = [run_json(run, done[i + 1] if i + 1 < len(done) else None) for i, run in enumerate(done[:HISTORY])]
    # a run whose process died stays "running": after a while it no longer holds the tab's "checking ..." note
    running = any(run.status == RunStatus.RUNNING and run.started_at > utcnow() - STALE_RUN for run in runs[:1])
    return {"questions": [question_json(q) for q in list_questions(bot_id)], "files": course_files(bot_id),
            "latest": run_json(done[0], done[1] if len(done) > 1 else None, results=True) if done else None,
            "history": history, "pending": running or _pending(bot_id)}


def _pending(bot_id: int) -> bool:
    """Whether a run will come: a file is being ingested, or the course changed since the last run (settled or not)."""
    state = snapshot(bot_id)
    last = latest_run(bot_id)
    return bool(state.questions) and (state.ingesting or last is None or last.stamp != state.stamp)
