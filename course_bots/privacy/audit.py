"""The audit-trail writer other features call (settings, materials, bot deletions): role, pseudonym, no content."""
from __future__ import annotations

from typing import Any

from course_bots.privacy.models import AuditEvent
from course_bots.privacy.operations import audit, audit_session
from lti_tool.context import SessionToken

__all__ = ["audit", "record"]


def record(session: SessionToken, action: str, *, target_type: str = "", target_id: str | int = "",
           details: dict[str, Any] | None = None) -> AuditEvent:
    """Audit an action by the session's holder; ``details`` must hold counts or setting names, never content."""
    return audit_session(session, action, target_type=target_type, target_id=target_id, details=details)
