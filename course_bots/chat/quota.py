"""The quota hook that runs before every answer; the limits themselves come later, the check and message exist now."""
from __future__ import annotations

from dataclasses import dataclass

from course_bots import i18n
from lti_tool.context import SessionToken


@dataclass(frozen=True)
class QuotaDecision:
    """Whether a question may be answered, and the message for the student when not."""

    allowed: bool
    code: str = ""
    message: str = ""
    retry_after_s: int | None = None


def check_quota(session: SessionToken, bot_id: int, language: str = "en") -> QuotaDecision:
    """Decide whether this participant may ask now (previews are never limited or counted)."""
    if session.preview:
        return QuotaDecision(True)
    left = _questions_left(session, bot_id)
    if left is None or left > 0:
        return QuotaDecision(True)
    return QuotaDecision(False, "quota_exceeded", i18n.text("chat_quota_exceeded", language), 3600)


def _questions_left(session: SessionToken, bot_id: int) -> int | None:
    """Questions this participant may still ask now; None means unlimited (no limits are configured yet)."""
    return None
