"""Consent: versioned notice texts per platform and language, and each participant's answer per bot.

A participant is asked again when the notice gets a new version, or when the bot switches to an external model
after they accepted a local one. Which model a bot uses is answered by a resolver the chat registers in
``app.extensions["coursebots.external_model_resolver"]``: ``(bot_id) -> str | None`` (the external model's
display name, or None when a locally hosted model answers).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from flask import current_app
from sqlalchemy import func, select

from course_bots import i18n
from course_bots.errors import ServiceError
from course_bots.privacy.models import ConsentNotice, ConsentRecord
from course_bots.privacy.retention import effective_retention
from lti_tool.context import SessionToken
from lti_tool.extensions import current_config, db, utcnow


class ConsentError(ServiceError, ValueError):
    """A consent answer that cannot be recorded (e.g. it answers an outdated notice): 409 unless told."""

    default_status = 409


@dataclass(frozen=True)
class Notice:
    """The notice a participant is shown: stored text, or the built-in default (``id`` None, version 0)."""

    id: int | None
    issuer: str
    language: str
    version: int
    text: str


def language_of(locale: str) -> str:
    """``de-DE`` -> ``de``; the language key of notices."""
    return (locale or "en").replace("_", "-").split("-")[0].lower() or "en"


def external_model(bot_id: int) -> str | None:
    """The external model's name when the bot sends questions outside the institution, else None."""
    resolver: Callable[[int], str | None] | None = current_app.extensions.get("coursebots.external_model_resolver")
    return resolver(bot_id) if resolver else None


def current_notice(issuer: str, locale: str) -> Notice:
    """The newest notice for the platform and language (falling back to English, all platforms, built-in)."""
    language = language_of(locale)
    for candidate_issuer, candidate_language in ((issuer, language), (issuer, "en"), ("", language), ("", "en")):
        row = db.session.scalars(
            select(ConsentNotice).where(ConsentNotice.issuer == candidate_issuer,
                                        ConsentNotice.language == candidate_language)
            .order_by(ConsentNotice.version.desc())).first()
        if row is not None:
            return Notice(row.id, row.issuer, row.language, row.version, row.text)
    builtin = language if language in i18n.LANGUAGES else "en"
    return Notice(None, "", builtin, 0, i18n.text("consent_notice", builtin))


def render_notice(notice: Notice, bot_id: int) -> str:
    """The notice text with retention, threshold and model filled in (placeholders are optional in stored texts)."""
    retention = effective_retention(bot_id)
    name = external_model(bot_id)
    language = notice.language  # the catalogue answers in English for a language it lacks
    model = (i18n.text("consent_model_external", language, name=name) if name
             else i18n.text("consent_model_local", language))
    values = {"min_students": current_config().privacy_min_students, "model": model,
              "anonymize_days": retention.anonymize_days or "∞", "delete_days": retention.delete_days or "∞"}
    try:
        return notice.text.format(**values)
    except (KeyError, IndexError, ValueError):
        return notice.text  # an admin's text with other braces is shown as written


def latest_record(bot_id: int, pseudonym_: str) -> ConsentRecord | None:
    """The participant's most recent consent answer in this bot."""
    return db.session.scalars(select(ConsentRecord).where(ConsentRecord.bot_id == bot_id,
                                                          ConsentRecord.pseudonym == pseudonym_)
                              .order_by(ConsentRecord.created_at.desc(), ConsentRecord.id.desc())).first()


def consent_status(session: SessionToken) -> dict[str, Any]:
    """Whether the participant must be asked (and why), with the notice to show."""
    notice = current_notice(session.issuer, session.locale)
    record = latest_record(session.bot_id, session.pseudonym)
    external = external_model(session.bot_id)
    reason = None
    if record is None:
        reason = "first_use"
    elif (record.notice_id, record.notice_version) != (notice.id, notice.version):
        reason = "new_version"
    elif external and not record.external_model:
        reason = "external_model"
    elif not record.accepted:
        reason = "declined"
    return {"required": reason is not None, "accepted": reason is None, "reason": reason,
            "external_model": external, "notice": {**asdict(notice), "text": render_notice(notice, session.bot_id)}}


def has_consent(session: SessionToken) -> bool:
    """Whether the participant accepted the current notice for the bot's current model (the chat checks this)."""
    return bool(consent_status(session)["accepted"])


def record_consent(session: SessionToken, accepted: bool, notice_version: int) -> ConsentRecord:
    """Record the participant's answer to the notice version they were shown."""
    notice = current_notice(session.issuer, session.locale)
    if notice_version != notice.version:
        raise ConsentError("notice_changed", "The notice has changed; please read the new version.")
    record = ConsentRecord(bot_id=session.bot_id, pseudonym=session.pseudonym, notice_id=notice.id,
                           notice_version=notice.version, language=notice.language,
                           external_model=external_model(session.bot_id) is not None, accepted=bool(accepted),
                           created_at=utcnow())
    db.session.add(record)
    db.session.flush()
    return record


def set_notice(issuer: str, language: str, text: str) -> ConsentNotice:
    """Publish a new version of a platform's notice for one language (everyone is asked again)."""
    if not text.strip():
        raise ConsentError("empty_notice", "The notice text is empty.", 400)
    language = language_of(language)
    highest = db.session.scalar(select(func.max(ConsentNotice.version))
                                .where(ConsentNotice.issuer == issuer, ConsentNotice.language == language)) or 0
    notice = ConsentNotice(issuer=issuer, language=language, version=highest + 1, text=text.strip(),
                           created_at=utcnow())
    db.session.add(notice)
    db.session.flush()
    return notice
