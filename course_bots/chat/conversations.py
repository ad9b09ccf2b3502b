"""The only way chat data is stored: scrubbed questions, answers, failures and feedback, by pseudonym and role.

Every text passes through the session's :class:`~course_bots.privacy_rules.Scrubber` (the launch's names from
the token plus the institution's patterns) before it reaches the database. Services only ``flush()``; the
view commits once.
"""
from __future__ import annotations

import logging
from typing import Any

from datetime import timedelta

from sqlalchemy import delete, func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError

from course_bots.chat.models import ChatSession, Feedback, Message
from course_bots.models import CourseBot
from course_bots.privacy.models import ParticipantLabel
from course_bots.privacy_rules import Scrubber
from course_bots.chat.usage import add_usage
from course_bots.errors import ServiceError
from lti_tool.context import SessionToken
from lti_tool.extensions import current_config, db, utcnow

logger = logging.getLogger(__name__)

TITLE_LENGTH = 80
UNANSWERED_CODES = ("cancelled",)  # the student left or stopped: not an error of the tool, asked again re-answers
# A course's "last used" time is written at most this often: not on every question (a hot row under load).
LAST_USED_RESOLUTION = timedelta(minutes=5)


class ConversationError(ServiceError):
    """A request the chat data cannot honour (400 unless told)."""


def scrubber_for(session: SessionToken) -> Scrubber:
    """The scrubber for this session: its launch names (from the token only) and the configured patterns."""
    return Scrubber(tuple(session.names), current_config().pii_extra_patterns)


def _own_sessions(session: SessionToken) -> Any:
    return select(ChatSession).where(ChatSession.bot_id == session.bot_id,
                                     ChatSession.pseudonym == session.pseudonym)


def get_conversation(session: SessionToken, conversation_id: int) -> ChatSession:
    """The caller's own conversation; another user's or another course's reads as not found."""
    found = db.session.scalars(_own_sessions(session).where(ChatSession.id == conversation_id)).first()
    if found is None:
        raise ConversationError("not_found", "This conversation does not exist.", 404)
    return found


def list_conversations(session: SessionToken) -> list[ChatSession]:
    """The caller's conversations in this course, most recent first."""
    return list(db.session.scalars(_own_sessions(session).order_by(ChatSession.updated_at.desc(),
                                                                   ChatSession.id.desc())))


def conversation_messages(session: SessionToken, conversation_id: int) -> list[Message]:
    """The messages of one own conversation, oldest first."""
    return list(get_conversation(session, conversation_id).messages)


def history(session: SessionToken, conversation_id: int, limit: int = 20) -> list[tuple[str, str]]:
    """The last ``limit`` stored (scrubbed) turns as (role, text), for building the next prompt."""
    rows = [(m.role, m.text) for m in conversation_messages(session, conversation_id) if m.status == "ok"]
    return rows[-limit:]


def ensure_label(bot_id: int, pseudonym: str) -> int:
    """The participant's number within the course ("Student 17"), assigned on first use."""
    query = select(ParticipantLabel.number).where(ParticipantLabel.bot_id == bot_id,
                                                  ParticipantLabel.pseudonym == pseudonym)
    for _attempt in range(5):
        number = db.session.scalars(query).first()
        if number is not None:
            return int(number)
        highest = db.session.scalar(select(func.max(ParticipantLabel.number))
                                    .where(ParticipantLabel.bot_id == bot_id)) or 0
        try:
            with db.session.begin_nested():
                db.session.add(ParticipantLabel(bot_id=bot_id, pseudonym=pseudonym, number=highest + 1))
            return highest + 1
        except IntegrityError:
            continue  # another request took this number (or labelled this participant) meanwhile
    raise ConversationError("busy", "Please try again.", 503)


def _existing_question(session: SessionToken, client_message_id: str, conversation_id: int | None) -> Message | None:
    query = (select(Message).join(ChatSession)
             .where(ChatSession.bot_id == session.bot_id, ChatSession.pseudonym == session.pseudonym,
                    Message.client_message_id == client_message_id, Message.role == "user"))
    if conversation_id is not None:
        query = query.where(ChatSession.id == conversation_id)
    return db.session.scalars(query.order_by(Message.id.desc())).first()


def record_question(session: SessionToken, conversation_id: int | None, client_message_id: str,
                    text: str) -> Message:
    """Store a scrubbed question (new conversation when ``conversation_id`` is None); a retry returns the first."""
    return store_question(session, conversation_id, client_message_id, text)[0]


def store_question(session: SessionToken, conversation_id: int | None, client_message_id: str,
                   text: str) -> tuple[Message, bool]:
    """:func:`record_question`, also saying whether the question is new (False: a retry or an unanswered re-ask)."""
    if not client_message_id or len(client_message_id) > 64:
        raise ConversationError("invalid_client_message_id", "Each question needs a client id of 1-64 characters.")
    if not text or not text.strip():
        raise ConversationError("empty_question", "The question is empty.")
    existing = _existing_question(session, client_message_id, conversation_id)
    if existing is not None:
        return existing, False
    conversation = get_conversation(session, conversation_id) if conversation_id is not None else None
    scrubbed = scrubber_for(session).scrub(text.strip())
    unanswered = _unanswered_same(session, conversation, scrubbed)
    if unanswered is not None:
        return unanswered, False  # asked again after leaving mid-answer: the same question, answered this time
    now = utcnow()
    started = conversation is None
    try:
        with db.session.begin_nested():
            if conversation is None:
                conversation = ChatSession(bot_id=session.bot_id, pseudonym=session.pseudonym,
                                           role=session.primary_role.value, preview=session.preview,
                                           title=_title(scrubbed), created_at=now, updated_at=now)
                db.session.add(conversation)
                db.session.flush()
            message = Message(session_id=conversation.id, role="user", text=scrubbed,
                              client_message_id=client_message_id, status="ok", created_at=now)
            db.session.add(message)
            db.session.flush()
    except IntegrityError:
        # The same question arrived twice at once: the other request stored it.
        found = _existing_question(session, client_message_id, conversation_id)
        if found is None:
            raise
        return found, False
    conversation.updated_at = now
    db.session.execute(update(CourseBot).where(  # one statement, and only every few minutes a write
        CourseBot.id == session.bot_id,
        or_(CourseBot.last_used_at.is_(None), CourseBot.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now).execution_options(synchronize_session=False))
    if not session.preview:
        if started:  # a participant's label is given with their first conversation; later ones have it
            ensure_label(session.bot_id, session.pseudonym)
        add_usage(session.bot_id, questions=1)
    db.session.flush()
    return message, True


def _unanswered_same(session: SessionToken, conversation: ChatSession | None, scrubbed: str) -> Message | None:
    """The caller's last question if it has the same text and was never answered (left or stopped mid-answer).

    A student who closes the page while the first answer is prepared and asks again must not find the question
    twice: the new ask (a new client id) re-answers the stored question instead of storing a second one.
    """
    if conversation is None:
        newest = _own_sessions(session).order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
        conversation = db.session.scalars(newest).first()
    if conversation is None:
        return None
    last = db.session.scalars(select(Message).where(Message.session_id == conversation.id)
                              .order_by(Message.id.desc())).first()
    if last is None:
        return None
    left = last.role == "assistant" and last.status == "failed" and last.error_code in UNANSWERED_CODES
    question = last if last.role == "user" else (
        db.session.get(Message, last.reply_to_id) if left and last.reply_to_id else None)
    if question is None or question.role != "user" or question.text != scrubbed:
        return None
    return question


def _question(session: SessionToken, question_id: int) -> Message:
    """One of the caller's questions (404 otherwise); the one this request just stored comes from the session."""
    held = db.session.identity_map.get(db.session.identity_key(Message, question_id))
    if held is not None and not inspect(held).expired_attributes and held.role == "user":
        conversation = db.session.identity_map.get(db.session.identity_key(ChatSession, held.session_id))
        if conversation is not None and (conversation.bot_id, conversation.pseudonym) == (session.bot_id,
                                                                                          session.pseudonym):
            return held
    question = db.session.scalars(
        select(Message).join(ChatSession)
        .where(Message.id == question_id, Message.role == "user", ChatSession.bot_id == session.bot_id,
               ChatSession.pseudonym == session.pseudonym)).first()
    if question is None:
        raise ConversationError("not_found", "This question does not exist.", 404)
    return question


def _answer_slot(question: Message) -> tuple[Message, bool]:
    """The answer row of a question (one per question: a retry overwrites a failed or earlier answer)."""
    answer = db.session.scalars(select(Message).where(Message.reply_to_id == question.id)
                                .order_by(Message.id)).first()
    if answer is not None:
        return answer, False
    answer = Message(session_id=question.session_id, role="assistant", reply_to_id=question.id)
    db.session.add(answer)
    return answer, True


def _touch(conversation_id: int, when: Any) -> None:
    """Set a conversation's ``updated_at`` with one statement (loading the conversation first cost a query)."""
    db.session.execute(update(ChatSession).where(ChatSession.id == conversation_id).values(updated_at=when)
                       .execution_options(synchronize_session=False))


def record_answer(session: SessionToken, question_id: int, text: str, *, citations: list[Any] | None = None,
                  prompt_tokens: int | None = None, completion_tokens: int | None = None,
                  model_id: str | None = None, confidence: float | None = None, answer_kind: str | None = None,
                  latency_ms: int | None = None) -> Message:
    """Store the (scrubbed) answer to one of the caller's questions, with citations and token counts."""
    question = _question(session, question_id)
    scrubber = scrubber_for(session)
    answer, _new = _answer_slot(question)
    was_ok = answer.status == "ok" and answer.id is not None
    answer.text = scrubber.scrub(text)
    answer.citations = scrubber.scrub_json(citations) if citations is not None else None
    answer.status, answer.error_code = "ok", None
    answer.prompt_tokens, answer.completion_tokens = prompt_tokens, completion_tokens
    answer.model_id, answer.confidence, answer.latency_ms = model_id, confidence, latency_ms
    answer.answer_kind = answer_kind
    answer.created_at = utcnow()
    _touch(question.session_id, answer.created_at)
    if not session.preview:
        add_usage(session.bot_id, answers=0 if was_ok else 1, prompt_tokens=prompt_tokens or 0,
                  completion_tokens=completion_tokens or 0)
    db.session.flush()
    return answer


def record_failure(session: SessionToken, question_id: int, error_code: str, *, partial_text: str = "",
                   model_id: str | None = None, answer_kind: str | None = None) -> Message:
    """Mark the answer to a question as failed (the question itself stays stored)."""
    question = _question(session, question_id)
    answer, _new = _answer_slot(question)
    answer.text = scrubber_for(session).scrub(partial_text)
    answer.status, answer.error_code, answer.model_id = "failed", error_code[:64], model_id
    answer.answer_kind = answer_kind
    answer.citations = None
    answer.created_at = utcnow()
    _touch(question.session_id, answer.created_at)
    if not session.preview and error_code not in UNANSWERED_CODES:
        add_usage(session.bot_id, errors=1)  # a student leaving mid-answer is not an error of the tool
    logger.info("answer failed: bot=%s code=%s", session.bot_id, error_code)
    db.session.flush()
    return answer


def record_feedback(session: SessionToken, message_id: int, value: str, comment: str = "") -> Feedback:
    """Thumbs up/down (+ scrubbed comment) on an answer in one of the caller's conversations; last one wins."""
    if value not in ("up", "down"):
        raise ConversationError("invalid_feedback", "Feedback is 'up' or 'down'.")
    message = db.session.scalars(
        select(Message).join(ChatSession)
        .where(Message.id == message_id, Message.role == "assistant", ChatSession.bot_id == session.bot_id,
               ChatSession.pseudonym == session.pseudonym)).first()
    if message is None:
        raise ConversationError("not_found", "This answer does not exist.", 404)
    feedback = db.session.scalars(select(Feedback).where(Feedback.message_id == message.id)).first()
    if feedback is None:
        feedback = Feedback(message_id=message.id, value=value)
        db.session.add(feedback)
    feedback.value = value
    feedback.comment = scrubber_for(session).scrub((comment or "").strip()[:4000])
    feedback.created_at = utcnow()
    db.session.flush()
    return feedback


def delete_conversation(session: SessionToken, conversation_id: int) -> None:
    """Delete one of the caller's conversations with its messages and feedback."""
    conversation = get_conversation(session, conversation_id)
    db.session.execute(delete(ChatSession).where(ChatSession.id == conversation.id))
    db.session.expunge(conversation)
    db.session.flush()


def delete_all_conversations(session: SessionToken) -> int:
    """Delete all of the caller's conversations in this course; returns how many."""
    ids = list(db.session.scalars(select(ChatSession.id).where(ChatSession.bot_id == session.bot_id,
                                                               ChatSession.pseudonym == session.pseudonym)))
    if ids:
        db.session.execute(delete(ChatSession).where(ChatSession.id.in_(ids)))
        db.session.expire_all()
    db.session.flush()
    return len(ids)


def _title(scrubbed: str) -> str:
    line = " ".join(scrubbed.split())
    return line if len(line) <= TITLE_LENGTH else line[:TITLE_LENGTH - 1].rstrip() + "…"
