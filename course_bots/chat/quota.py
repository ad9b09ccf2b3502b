"""The chat's fair-use gate: before a question is stored it is counted and may be refused (429), and the ``done``
event carries how many questions are left. The limits and counters live in :mod:`course_bots.quotas`.

A refused question is not stored (the student's input keeps the text; docs/QUOTAS.md). Teacher previews are
never limited or counted. The model catalogue's ``requests_per_minute`` is enforced here per course (``model_busy``).
"""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from course_bots import backends
from course_bots.chat.models import Message
from course_bots.quotas import operations as quotas
from course_bots.settings.models import BotSettings
from lti_tool.context import SessionToken
from lti_tool.extensions import current_config, db

QuotaDecision = quotas.Decision  # the name the chat view has used since the hook existed


def check_quota(session: SessionToken, bot_id: int, language: str = "en", settings: BotSettings | None = None,
                client_id: str = "") -> QuotaDecision:
    """Count this question and decide whether it may be answered now (previews are never limited or counted)."""
    if session.preview:
        return QuotaDecision(True)
    model_key = settings.model_key if settings is not None else ""
    entry = backends.entry_for(current_config(), model_key)
    decision = quotas.check(session, bot_id, _language(settings, language), client_id=client_id,
                            model_key=entry.key, requests_per_minute=entry.requests_per_minute)
    if not decision.allowed:
        db.session.commit()  # the limit hit is kept for the teacher's view; nothing else is pending
    return decision


def _language(settings: BotSettings | None, page_language: str) -> str:
    """The refusal's language: the answer language the teacher fixed, else the student's page language."""
    if settings is not None and settings.answer_language in ("de", "en"):
        return settings.answer_language
    return page_language if page_language in ("de", "en") else "en"


def refusal(decision: QuotaDecision) -> Response:
    """The 429 answer: ``Retry-After`` and ``{"error": {code, message, retry_after_s, resets_at}}``."""
    response = jsonify({"error": {"code": decision.code, "message": decision.message,
                                  "retry_after_s": decision.retry_after_s, "resets_at": decision.resets_at}})
    response.status_code = 429
    response.headers["Retry-After"] = str(decision.retry_after_s or 60)
    response.headers["Cache-Control"] = "no-store"
    return response


def after_answer(session: SessionToken, bot_id: int, done: dict[str, Any]) -> dict[str, Any]:
    """Count the answer's model tokens (once per answer) and return the ``done`` event's ``quota`` object (one
    Redis round trip for both)."""
    message_id = done.get("message_id")
    if isinstance(message_id, int) and not session.preview:
        answer = db.session.get(Message, message_id)  # the answer just stored: from the session, no query
        if answer is not None:
            tokens = int(answer.prompt_tokens or 0) + int(answer.completion_tokens or 0)
            return quotas.add_tokens(session, bot_id, message_id, tokens)
    return quotas.status(session, bot_id)
