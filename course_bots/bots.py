"""Course bot identity: one bot per (platform issuer, deployment id, context id), created on first launch."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from course_bots.models import CourseBot
from lti_tool.context import api_error, current_session
from lti_tool.extensions import db, utcnow

F = TypeVar("F", bound=Callable[..., Any])


def get_or_create_bot(issuer: str, deployment_id: str, context_id: str, title: str) -> tuple[CourseBot, bool]:
    """Return the course's bot and whether it was just created (safe when two launches race)."""
    query = select(CourseBot).filter_by(issuer=issuer, deployment_id=deployment_id, context_id=context_id)
    bot = db.session.scalars(query).first()
    if bot is not None:
        bot.last_used_at = utcnow()
        if title and not bot.title:
            bot.title = title[:255]
        db.session.flush()
        return bot, False
    try:
        with db.session.begin_nested():
            bot = CourseBot(issuer=issuer, deployment_id=deployment_id, context_id=context_id,
                            title=(title or "Course")[:255])
            db.session.add(bot)
        return bot, True
    except IntegrityError:
        # Another worker created it between our select and insert: use theirs.
        return db.session.scalars(query).one(), False


def get_bot(bot_id: int) -> CourseBot | None:
    """The bot with this id, or None."""
    return db.session.get(CourseBot, bot_id)


def own_bot(view: F) -> F:
    """Reject a request whose session belongs to another bot than the route's ``bot_id`` (403), or to a deleted one
    (404: the page of a course whose chatbot a teacher deleted writes nothing more)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_session().bot_id != kwargs.get("bot_id"):
            return api_error("forbidden", "This session belongs to another course.", 403)
        if get_bot(kwargs["bot_id"]) is None:
            return api_error("not_found", "This course's chatbot was deleted. Open it again from the course.", 404)
        return view(*args, **kwargs)

    return cast(F, wrapped)
