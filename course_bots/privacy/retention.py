"""Which retention applies: a platform's rule (or the configured default), tightened by a bot's override."""
from __future__ import annotations

from sqlalchemy import select

from course_bots.models import CourseBot
from course_bots.privacy.models import RetentionPolicy
from course_bots.privacy_rules import Retention, stricter
from lti_tool.extensions import current_config, db


def platform_retention(issuer: str) -> Retention:
    """The platform's rule (or the configured defaults)."""
    config = current_config()
    row = db.session.scalars(select(RetentionPolicy).where(RetentionPolicy.issuer == issuer,
                                                           RetentionPolicy.bot_id.is_(None))).first()
    if row is None:
        return Retention(config.retention_anonymize_days, config.retention_delete_days)
    return Retention(row.anonymize_days, row.delete_days)


def effective_retention(bot_id: int) -> Retention:
    """The bot's retention: its platform's rule, tightened by the bot's override if any."""
    bot = db.session.get(CourseBot, bot_id)
    if bot is None:
        config = current_config()
        return Retention(config.retention_anonymize_days, config.retention_delete_days)
    override = db.session.scalars(select(RetentionPolicy).where(RetentionPolicy.bot_id == bot_id)).first()
    base = platform_retention(bot.issuer)
    return stricter(base, Retention(override.anonymize_days, override.delete_days) if override else None)
