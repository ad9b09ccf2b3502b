"""Operations on stored personal data: audit trail, export and erasure (student and admin), retention purge.

An admin's export or erasure by LTI user id works by recomputing the pseudonym for each bot of the platform —
the user id itself is never stored. Services only ``flush()``; the view or CLI command commits once.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable

from flask import current_app
from sqlalchemy import delete, select, update

from course_bots.privacy.models import AuditEvent, ConsentRecord, ParticipantLabel, RetentionPolicy
from course_bots.chat.models import ChatSession, Feedback, Message
from course_bots.models import CourseBot
from course_bots.quotas.models import QuotaHit  # fair-use limit hits carry the pseudonym too
# The feature's face: what chat asks of privacy (consent before answering) lives in consent.py.
from course_bots.privacy.consent import (  # noqa: F401
    ConsentError, consent_status, has_consent, language_of, record_consent)
from course_bots.privacy.retention import effective_retention, platform_retention  # noqa: F401  (the feature's face)
from course_bots.privacy_rules import Retention, is_stricter_or_equal, pseudonym
from lti_tool.context import SessionToken
from lti_tool.extensions import current_config, db, utcnow

logger = logging.getLogger(__name__)

BOT_DELETE_HOOKS = "coursebots.bot_delete_hooks"


# --- audit trail -----------------------------------------------------------------------------------------------

def audit(action: str, *, bot_id: int | None = None, issuer: str = "", actor_role: str = "system",
          actor_pseudonym: str | None = None, target_type: str = "", target_id: str | int = "",
          details: dict[str, Any] | None = None) -> AuditEvent:
    """Write one audit event: who (role + pseudonym), what, on which record, when — never content."""
    event = AuditEvent(bot_id=bot_id, issuer=issuer, actor_role=actor_role, actor_pseudonym=actor_pseudonym,
                       action=action, target_type=target_type, target_id=str(target_id), details=details,
                       created_at=utcnow())
    db.session.add(event)
    db.session.flush()
    return event


def audit_session(session: SessionToken, action: str, *, target_type: str = "", target_id: str | int = "",
                  details: dict[str, Any] | None = None) -> AuditEvent:
    """Audit an action done by the holder of a session token (e.g. a teacher exporting logs)."""
    return audit(action, bot_id=session.bot_id, issuer=session.issuer, actor_role=session.primary_role.value,
                 actor_pseudonym=session.pseudonym, target_type=target_type, target_id=target_id, details=details)


def audit_events(bot_id: int, limit: int = 200) -> list[AuditEvent]:
    """The bot's audit trail, newest first."""
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.bot_id == bot_id)
                                   .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)))


# --- export ----------------------------------------------------------------------------------------------------

def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_pseudonym(bot_id: int, pseudonym_: str) -> dict[str, Any]:
    """Everything stored under one pseudonym in one bot: conversations, messages, feedback, consent."""
    conversations = []
    sessions = db.session.scalars(select(ChatSession).where(ChatSession.bot_id == bot_id,
                                                            ChatSession.pseudonym == pseudonym_)
                                  .order_by(ChatSession.created_at, ChatSession.id))
    for conversation in sessions:
        messages = []
        for m in conversation.messages:
            feedback = db.session.scalars(select(Feedback).where(Feedback.message_id == m.id)).first()
            messages.append({
                "id": m.id, "role": m.role, "text": m.text, "status": m.status, "error_code": m.error_code,
                "reply_to": m.reply_to_id, "citations": m.citations, "model": m.model_id,
                "created_at": _iso(m.created_at),
                "feedback": {"value": feedback.value, "comment": feedback.comment,
                             "created_at": _iso(feedback.created_at)} if feedback else None})
        conversations.append({"id": conversation.id, "title": conversation.title, "role": conversation.role,
                              "preview": conversation.preview, "created_at": _iso(conversation.created_at),
                              "updated_at": _iso(conversation.updated_at), "messages": messages})
    consents = [{"notice_version": c.notice_version, "language": c.language, "accepted": c.accepted,
                 "external_model": c.external_model, "created_at": _iso(c.created_at)}
                for c in db.session.scalars(select(ConsentRecord).where(ConsentRecord.bot_id == bot_id,
                                                                        ConsentRecord.pseudonym == pseudonym_)
                                            .order_by(ConsentRecord.created_at, ConsentRecord.id))]
    label = db.session.scalars(select(ParticipantLabel.number).where(ParticipantLabel.bot_id == bot_id,
                                                                     ParticipantLabel.pseudonym == pseudonym_)).first()
    return {"participant_number": label, "conversations": conversations, "consent": consents}


def export_for_session(session: SessionToken) -> dict[str, Any]:
    """The caller's own history in this course (the student's data export)."""
    bot = db.session.get(CourseBot, session.bot_id)
    data = export_pseudonym(session.bot_id, session.pseudonym)
    return {"exported_at": _iso(utcnow()), "course": {"bot_id": session.bot_id, "title": bot.title if bot else ""},
            **data}


def _bots_of(issuer: str) -> list[CourseBot]:
    return list(db.session.scalars(select(CourseBot).where(CourseBot.issuer == issuer).order_by(CourseBot.id)))


def export_user(issuer: str, user_id: str) -> dict[str, Any]:
    """An admin's export of one LTI user on one platform, across all its bots (pseudonyms recomputed)."""
    key = current_config().pseudonym_key
    courses = []
    for bot in _bots_of(issuer):
        data = export_pseudonym(bot.id, pseudonym(key, issuer, user_id, bot.id))
        if data["conversations"] or data["consent"] or data["participant_number"]:
            courses.append({"bot_id": bot.id, "context_id": bot.context_id, "title": bot.title, **data})
    audit("admin_export", issuer=issuer, actor_role="admin_cli", target_type="user",
          details={"courses": len(courses)})
    return {"exported_at": _iso(utcnow()), "issuer": issuer, "courses": courses}


# --- erasure ---------------------------------------------------------------------------------------------------

def erase_pseudonym(bot_id: int, pseudonym_: str) -> dict[str, int]:
    """Delete everything stored under one pseudonym in one bot; audit entries it made lose the pseudonym."""
    session_ids = list(db.session.scalars(select(ChatSession.id).where(ChatSession.bot_id == bot_id,
                                                                       ChatSession.pseudonym == pseudonym_)))
    messages = 0
    if session_ids:
        messages = len(list(db.session.scalars(select(Message.id).where(Message.session_id.in_(session_ids)))))
        db.session.execute(delete(ChatSession).where(ChatSession.id.in_(session_ids)))
    consents = _rowcount(db.session.execute(delete(ConsentRecord).where(ConsentRecord.bot_id == bot_id,
                                                                        ConsentRecord.pseudonym == pseudonym_)))
    labels = _rowcount(db.session.execute(delete(ParticipantLabel).where(ParticipantLabel.bot_id == bot_id,
                                                                         ParticipantLabel.pseudonym == pseudonym_)))
    audits = _rowcount(db.session.execute(update(AuditEvent).where(AuditEvent.bot_id == bot_id,
                                                                   AuditEvent.actor_pseudonym == pseudonym_)
                                          .values(actor_pseudonym=None)))
    db.session.execute(delete(QuotaHit).where(QuotaHit.bot_id == bot_id, QuotaHit.pseudonym == pseudonym_))
    db.session.expire_all()
    db.session.flush()
    return {"conversations": len(session_ids), "messages": messages, "consent_records": consents,
            "labels": labels, "audit_events_unlinked": audits}


def erase_for_session(session: SessionToken) -> dict[str, int]:
    """The caller erases their own data in this course (conversations, consent, label)."""
    counts = erase_pseudonym(session.bot_id, session.pseudonym)
    audit("self_erase", bot_id=session.bot_id, issuer=session.issuer, actor_role=session.primary_role.value,
          details={k: v for k, v in counts.items() if k in ("conversations", "messages")})
    return counts


def erase_user(issuer: str, user_id: str) -> dict[str, Any]:
    """An admin erases everything of one LTI user on one platform (pseudonym recomputed per bot)."""
    key = current_config().pseudonym_key
    totals: dict[str, int] = {}
    courses = 0
    for bot in _bots_of(issuer):
        counts = erase_pseudonym(bot.id, pseudonym(key, issuer, user_id, bot.id))
        if any(counts.values()):
            courses += 1
            # No pseudonym of the erased person on the event: it would re-link what was just erased.
            audit("admin_erase", bot_id=bot.id, issuer=issuer, actor_role="admin_cli", target_type="user",
                  details={k: counts[k] for k in ("conversations", "messages")})
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
    logger.info("admin erase on one platform: %d courses, %d conversations", courses, totals.get("conversations", 0))
    return {"issuer": issuer, "courses": courses, **totals}


# --- retention -------------------------------------------------------------------------------------------------

def set_retention(issuer: str, anonymize_days: int, delete_days: int, bot_id: int | None = None,
                  actor_role: str = "admin_cli", actor_pseudonym: str | None = None) -> RetentionPolicy:
    """Set a platform's retention, or a bot override that may only be stricter than its platform's."""
    if anonymize_days < 0 or delete_days < 0:
        raise ValueError("days must be 0 (never) or positive")
    if anonymize_days and delete_days and anonymize_days > delete_days:
        raise ValueError("conversations must be anonymized before they are deleted")
    wanted = Retention(anonymize_days, delete_days)
    if bot_id is not None:
        bot = db.session.get(CourseBot, bot_id)
        if bot is None or bot.issuer != issuer:
            raise ValueError("no such bot on this platform")
        if not is_stricter_or_equal(platform_retention(issuer), wanted):
            raise ValueError("a bot may only keep data for a shorter time than its platform's rule")
    row = db.session.scalars(select(RetentionPolicy).where(
        RetentionPolicy.issuer == issuer,
        RetentionPolicy.bot_id == bot_id if bot_id is not None else RetentionPolicy.bot_id.is_(None))).first()
    if row is None:
        row = RetentionPolicy(issuer=issuer, bot_id=bot_id, anonymize_days=anonymize_days, delete_days=delete_days)
        db.session.add(row)
    row.anonymize_days, row.delete_days, row.updated_at = anonymize_days, delete_days, utcnow()
    audit("retention_changed", bot_id=bot_id, issuer=issuer, actor_role=actor_role, actor_pseudonym=actor_pseudonym,
          target_type="retention_policy", details={"anonymize_days": anonymize_days, "delete_days": delete_days})
    db.session.flush()
    return row


def register_bot_delete_hook(app: Any, hook: Callable[[int], None]) -> None:
    """Let other modules clean up outside the database (e.g. files) when a bot is deleted by retention."""
    app.extensions.setdefault(BOT_DELETE_HOOKS, []).append(hook)


def delete_bot(bot_id: int, *, reason: str, actor_role: str = "system", actor_pseudonym: str | None = None) -> None:
    """Delete a bot with all its data (tables cascade on ``course_bot``); the audit event stays."""
    bot = db.session.get(CourseBot, bot_id)
    if bot is None:
        return
    issuer = bot.issuer
    for hook in current_app.extensions.get(BOT_DELETE_HOOKS, []):
        hook(bot_id)
    db.session.execute(delete(CourseBot).where(CourseBot.id == bot_id))
    db.session.expire_all()
    audit("bot_deleted", bot_id=None, issuer=issuer, actor_role=actor_role, actor_pseudonym=actor_pseudonym,
          target_type="course_bot", target_id=bot_id, details={"reason": reason})


def purge(now: datetime | None = None) -> dict[str, int]:
    """Apply retention everywhere: drop pseudonyms, delete old conversations and inactive bots. Returns counts."""
    now = now or utcnow()
    config = current_config()
    counts = {"anonymized": 0, "deleted": 0, "bots_deleted": 0, "labels_deleted": 0}
    if config.bot_inactive_delete_days > 0:
        cutoff = now - timedelta(days=config.bot_inactive_delete_days)
        for bot_id in list(db.session.scalars(select(CourseBot.id).where(CourseBot.last_used_at < cutoff))):
            delete_bot(bot_id, reason="inactive")
            counts["bots_deleted"] += 1
    for bot_id in list(db.session.scalars(select(CourseBot.id))):
        retention = effective_retention(bot_id)
        if retention.delete_days > 0:
            cutoff = now - timedelta(days=retention.delete_days)
            counts["deleted"] += _rowcount(db.session.execute(
                delete(ChatSession).where(ChatSession.bot_id == bot_id, ChatSession.updated_at < cutoff)
                .execution_options(synchronize_session=False)))
        if retention.anonymize_days > 0:
            cutoff = now - timedelta(days=retention.anonymize_days)
            counts["anonymized"] += _rowcount(db.session.execute(
                update(ChatSession).where(ChatSession.bot_id == bot_id, ChatSession.pseudonym.is_not(None),
                                          ChatSession.updated_at < cutoff)
                .values(pseudonym=None, anonymized_at=now).execution_options(synchronize_session=False)))
            db.session.execute(update(AuditEvent).where(AuditEvent.bot_id == bot_id, AuditEvent.created_at < cutoff,
                                                        AuditEvent.actor_pseudonym.is_not(None))
                               .values(actor_pseudonym=None).execution_options(synchronize_session=False))
            db.session.execute(delete(QuotaHit).where(QuotaHit.bot_id == bot_id, QuotaHit.day < cutoff.date())
                               .execution_options(synchronize_session=False))  # fair-use hits carry a pseudonym
        # A label whose person has no linked conversation left would only keep a pseudonym for nothing.
        active = select(ChatSession.pseudonym).where(ChatSession.bot_id == bot_id, ChatSession.pseudonym.is_not(None))
        counts["labels_deleted"] += _rowcount(db.session.execute(
            delete(ParticipantLabel).where(ParticipantLabel.bot_id == bot_id, ParticipantLabel.pseudonym.not_in(active))
            .execution_options(synchronize_session=False)))
    db.session.expire_all()
    db.session.flush()
    logger.info("retention purge: %(anonymized)d anonymized, %(deleted)d deleted, %(bots_deleted)d bots deleted, "
                "%(labels_deleted)d labels dropped", counts)
    return counts
