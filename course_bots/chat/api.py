"""``/api/v1/bots/<bot_id>/...``: conversations, the streamed chat, feedback and citations for the session's bot."""
from __future__ import annotations

import json
import logging
from typing import Any, Iterator

from flask import Blueprint, Response, jsonify, stream_with_context
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from course_bots import i18n
from course_bots.bots import own_bot
from course_bots.chat.models import ChatSession, Message
from course_bots.render import render_markdown
from course_bots.chat import operations as chat, conversations, quota, usage
from course_bots.privacy import operations as privacy
from course_bots.materials import operations as materials
from course_bots.schemas import ChatQuestion, FeedbackBody, parse_body
from lti_tool.context import JSON_BODY_BYTES, SessionToken, api_error, current_session, max_body, require_session
from lti_tool import metrics
from lti_tool.extensions import db

logger = logging.getLogger(__name__)

bp = Blueprint("api_chat", __name__, url_prefix="/api/v1/bots/<int:bot_id>")


def message_json(message: Any) -> dict[str, Any]:
    """A stored message for the page: questions as text (inserted with textContent), answers as sanitized HTML."""
    data: dict[str, Any] = {"id": message.id, "role": message.role, "status": message.status,
                            "created_at": message.created_at.isoformat(), "reply_to": message.reply_to_id}
    if message.role == "assistant":
        citations = list(message.citations or [])
        data["html"] = render_markdown(message.text, citations={int(c.get("number", 0)) for c in citations})
        data["citations"] = [chat.citation_view(c) for c in citations]
        data["error_code"] = message.error_code
    else:
        data["text"] = message.text
        data["client_id"] = message.client_message_id  # the page's own id: "ask again" re-sends it (stored once)
    return data


@bp.get("/chat/info")
@require_session()
@own_bot
def chat_info(bot_id: int) -> Response:
    """What the chat shows before the first question: name, welcome text (sanitized HTML), pause state."""
    settings = chat.settings_for(bot_id)  # defaults when no teacher saved any: reading writes nothing
    return jsonify({"name": settings.name, "welcome_html": render_markdown(settings.welcome_message, citations=set()),
                    "paused": settings.paused and not current_session().preview,
                    "pause_message": settings.pause_message})


@bp.get("/conversations")
@require_session()
@own_bot
def list_conversations(bot_id: int) -> Response:
    """The caller's conversations in this course, newest first."""
    items = conversations.list_conversations(current_session())
    return jsonify({"conversations": [{"id": c.id, "title": c.title, "updated_at": c.updated_at.isoformat()}
                                      for c in items]})


@bp.post("/conversations")
@require_session()
@own_bot
def new_conversation(bot_id: int) -> Response:
    """Start a new conversation: it is stored with its first question (nothing is stored before)."""
    return jsonify({"conversation_id": None}), 201  # type: ignore[return-value]


@bp.get("/conversations/<int:conversation_id>")
@require_session()
@own_bot
def get_conversation(bot_id: int, conversation_id: int) -> Response:
    """One of the caller's conversations with its messages."""
    conversation = conversations.get_conversation(current_session(), conversation_id)
    messages = conversations.conversation_messages(current_session(), conversation_id)
    return jsonify({"id": conversation.id, "title": conversation.title,
                    "messages": [message_json(m) for m in messages]})


@bp.delete("/conversations/<int:conversation_id>")
@require_session()
@own_bot
def delete_conversation(bot_id: int, conversation_id: int) -> Response:
    """Delete one of the caller's conversations."""
    conversations.delete_conversation(current_session(), conversation_id)
    db.session.commit()
    return Response(status=204)


@bp.delete("/conversations")
@require_session()
@own_bot
def delete_all(bot_id: int) -> Response:
    """Delete all of the caller's conversations in this course."""
    count = conversations.delete_all_conversations(current_session())
    db.session.commit()
    return jsonify({"deleted": count})


def _consented(session: SessionToken) -> bool:
    """Whether the participant accepted the privacy notice (a privacy check: it fails closed, never open)."""
    return bool(privacy.has_consent(session))


_to_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False) builds one per call
_json_string = json.encoder.encode_basestring  # what that encoder writes for a str (ensure_ascii=False)


def sse(name: str, data: dict[str, Any]) -> str:
    """One server-sent event (``data`` is JSON, so a newline in the text cannot end the event)."""
    if name == "token" and len(data) == 1:  # the per-token event: the same bytes, written without the encoder
        text = data.get("text")
        if type(text) is str:
            return 'event: token\ndata: {"text": ' + _json_string(text) + "}\n\n"
    return f"event: {name}\ndata: {_to_json(data)}\n\n"


@bp.post("/chat")
@max_body(JSON_BODY_BYTES)
@require_session()
@own_bot
def chat_stream(bot_id: int) -> Response:
    """Ask a question; the answer streams as ``text/event-stream`` events token/status/done/error."""
    body = parse_body(ChatQuestion)
    text, client_id, conversation_id = body.question, body.client_id, body.conversation_id
    if not text.strip():
        return api_error("invalid_question", "A question of 1-4000 characters is required.", 400)
    session = current_session()
    settings = chat.settings_for(bot_id)  # read once per question: the answer uses what the view read
    if settings.paused and not session.preview:
        return api_error("bot_paused", settings.pause_message or "The course bot is paused.", 423)
    if not session.preview and not _consented(session):
        return api_error("consent_required", "Please read and accept the notice before using the assistant.", 403)
    decision = quota.check_quota(session, bot_id, chat.page_language(session), settings, client_id)
    if not decision.allowed:
        metrics.QUOTA_REJECTIONS.labels(code=decision.code).inc()
        return quota.refusal(decision)  # 429 + Retry-After; the refused question is not stored (docs/QUOTAS.md)
    asked = chat.record(session, chat.Question(bot_id, text, client_id, conversation_id), settings)
    chat.commit_keeping()  # the question is kept whatever the answer does (and stays loaded for storing the answer)

    def events() -> Iterator[str]:
        try:
            for name, data in usage.metered(chat.answer(session, asked)):  # open streams, first token, outcome
                if name == "done":
                    data = {**data, "quota": quota.after_answer(session, bot_id, data)}
                yield sse(name, data)
        except OperationalError as exc:  # the database went away mid-answer (restart, failover): the question is kept
            logger.warning("Answer stream of bot %s lost the database (%s)", bot_id, type(exc.orig).__name__)
            db.session.rollback()
            yield sse("error", {"code": "database_unavailable", "retry": True, "conversation_id": asked.conversation_id,
                                "message": i18n.text("chat_database_unavailable", asked.language)})
        except Exception:
            logger.exception("Answer stream failed for bot %s", bot_id)
            db.session.rollback()
            yield sse("error", {"code": "internal", "message": "The answer failed."})

    response = Response(stream_with_context(events()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # proxies must pass tokens through as they come
    return response


@bp.post("/messages/<int:message_id>/feedback")
@max_body(JSON_BODY_BYTES)
@require_session()
@own_bot
def feedback(bot_id: int, message_id: int) -> Response:
    """Thumbs up/down and an optional comment on an answer of the caller's."""
    body = parse_body(FeedbackBody)
    conversations.record_feedback(current_session(), message_id, body.value, body.comment)
    db.session.commit()
    return jsonify({"ok": True})


@bp.get("/messages/<int:message_id>/citations")
@require_session()
@own_bot
def citations(bot_id: int, message_id: int) -> Response:
    """The citation panel of an answer: document, page/slide, quoted passage and, if allowed, a file link."""
    session = current_session()
    message = db.session.scalars(
        select(Message).join(ChatSession)
        .where(Message.id == message_id, Message.role == "assistant", ChatSession.bot_id == bot_id,
               ChatSession.pseudonym == session.pseudonym)).first()
    if message is None:
        return api_error("not_found", "This answer does not exist.", 404)
    return jsonify({"citations": [dict(chat.citation_view(c), file_url=file_url(bot_id, c))
                                  for c in message.citations or []]})


def file_url(bot_id: int, citation: dict[str, Any]) -> str | None:
    """A signed short-lived link to the cited file at its page, when the teacher lets students open it."""
    kind, _, number = str(citation.get("document_id", "")).partition(":")
    if kind != "material" or not number.isdigit():
        return None
    material = materials.get_material(bot_id, int(number))
    if material is None or not (material.students_may_open or current_session().is_teacher):
        return None
    page = citation.get("position") if citation.get("locator") == "page" else None
    return materials.material_file_url(bot_id, material.id, page if isinstance(page, int) else None,
                                       absolute=False)
