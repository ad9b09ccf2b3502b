"""Which limits hold for a participant: bot override -> the platform administrator's rule -> configured default.

Numbers here use one convention: ``None`` means "no limit". In the tables 0 stands for "no limit" on the platform
level and ``NULL`` for "not set here". A bot override only ever tightens: it is validated against the platform's
limit when saved, and the smaller of both is used when read (an administrator may tighten later).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from flask import g, has_request_context
from sqlalchemy import select

from course_bots import i18n
from course_bots.errors import ServiceError
from course_bots.quotas.models import LIMIT_FIELDS, PLATFORM, ROLES, BotQuota, PlatformQuota
from lti_tool.config import Config
from lti_tool.extensions import db, utcnow


class QuotaError(ServiceError, ValueError):
    """A limit an administrator or teacher may not set (400 ``invalid_quota``); ``field`` names it for the form."""

    def __init__(self, field: str, message: str) -> None:
        """Keep the field's name with the API's code and message."""
        super().__init__("invalid_quota", message)
        self.field = field


@dataclass(frozen=True)
class Limits:
    """One role's limits in one bot; ``None``: no limit."""

    questions_per_day: int | None
    tokens_per_day: int | None
    burst_per_minute: int | None

    def as_dict(self) -> dict[str, int | None]:
        """The limits as JSON."""
        return asdict(self)


def _limit(value: int | None) -> int | None:
    """0 (and negative) -> no limit."""
    return value if value and value > 0 else None


def config_defaults(config: Config, role: str) -> Limits:
    """The installation's defaults for ``role`` (learner, teacher or platform) from ``COURSEBOTS_QUOTA_*``."""
    if role == "learner":
        return Limits(_limit(config.quota_student_questions_per_day), _limit(config.quota_student_tokens_per_day),
                      _limit(config.quota_student_burst_per_minute))
    if role == "teacher":
        return Limits(None, None, _limit(config.quota_teacher_burst_per_minute))
    return Limits(_limit(config.quota_platform_questions_per_day), None, None)


def _overlay(base: Limits, row: Any) -> Limits:
    """``base`` with the values ``row`` sets (``NULL`` keeps the base; 0 means no limit)."""
    if row is None:
        return base
    values = {name: getattr(base, name) if getattr(row, name) is None else _limit(getattr(row, name))
              for name in LIMIT_FIELDS}
    return Limits(**values)


def platform_limits(config: Config, issuer: str, role: str) -> Limits:
    """What the administrator of ``issuer`` set for ``role`` over the configured defaults."""
    row = db.session.scalars(select(PlatformQuota).where(PlatformQuota.issuer == issuer,
                                                         PlatformQuota.role == role)).first()
    return _overlay(config_defaults(config, role), row)


def _tighter(platform: int | None, override: int | None) -> int | None:
    """The smaller of two limits (``None``: no limit)."""
    if override is None:
        return platform
    return override if platform is None else min(platform, override)


def effective_limits(config: Config, issuer: str, bot_id: int, role: str) -> Limits:
    """The limits that hold for ``role`` in the bot: the platform's, tightened by the teacher's override."""
    base = platform_limits(config, issuer, role)
    row = _bot_row(bot_id, role)
    if row is None:
        return base
    return Limits(**{name: _tighter(getattr(base, name), getattr(row, name)) for name in LIMIT_FIELDS})


def _bot_row(bot_id: int, role: str) -> BotQuota | None:
    """The teacher's override row for a role, if any."""
    return db.session.scalars(select(BotQuota).where(BotQuota.bot_id == bot_id, BotQuota.role == role)).first()


def question_limits(config: Config, issuer: str, bot_id: int, role: str) -> tuple[Limits, Limits]:
    """The participant's effective limits and the platform's budget for one question, read in two queries once per
    request (the check before the answer and the count after it share them)."""
    key = (issuer, bot_id, role)
    memo: dict[tuple[str, int, str], tuple[Limits, Limits]] | None = (
        g.setdefault("coursebots_question_limits", {}) if has_request_context() else None)
    if memo is not None and key in memo:
        return memo[key]
    rows = {row.role: row for row in db.session.scalars(
        select(PlatformQuota).where(PlatformQuota.issuer == issuer, PlatformQuota.role.in_((role, PLATFORM))))}
    base = _overlay(config_defaults(config, role), rows.get(role))
    override = _bot_row(bot_id, role)
    effective = base if override is None else Limits(
        **{name: _tighter(getattr(base, name), getattr(override, name)) for name in LIMIT_FIELDS})
    result = (effective, _overlay(config_defaults(config, PLATFORM), rows.get(PLATFORM)))
    if memo is not None:
        memo[key] = result
    return result


def platform_rules(config: Config, issuer: str) -> dict[str, Any]:
    """Per role (and the platform budget): what the administrator set, the configured default and what holds."""
    rules: dict[str, Any] = {}
    for role in (*ROLES, PLATFORM):
        row = db.session.scalars(select(PlatformQuota).where(PlatformQuota.issuer == issuer,
                                                             PlatformQuota.role == role)).first()
        rules[role] = {"set": {name: getattr(row, name) if row else None for name in LIMIT_FIELDS},
                       "default": config_defaults(config, role).as_dict(),
                       "effective": platform_limits(config, issuer, role).as_dict()}
    return rules


def set_platform_rule(issuer: str, role: str, values: Mapping[str, int | None]) -> None:
    """Set an administrator's limits for a role (only the fields given; ``None`` returns a field to the default)."""
    if role not in (*ROLES, PLATFORM):
        raise QuotaError("role", f"role must be one of {', '.join((*ROLES, PLATFORM))}")
    if role == PLATFORM and values.get("burst_per_minute") is not None:
        raise QuotaError("burst_per_minute", "The platform budget counts questions and tokens per day only.")
    row = db.session.scalars(select(PlatformQuota).where(PlatformQuota.issuer == issuer,
                                                         PlatformQuota.role == role)).first()
    if row is None:
        row = PlatformQuota(issuer=issuer, role=role)
        db.session.add(row)
    for name in LIMIT_FIELDS:
        if name in values:
            setattr(row, name, values[name])
    row.updated_at = utcnow()
    db.session.flush()


def bot_overrides(config: Config, issuer: str, bot_id: int) -> dict[str, Any]:
    """Per role: the teacher's override, the platform's limit it may only tighten, and what holds."""
    result: dict[str, Any] = {}
    for role in ROLES:
        row = _bot_row(bot_id, role)
        result[role] = {"override": {name: getattr(row, name) if row else None for name in LIMIT_FIELDS},
                        "platform": platform_limits(config, issuer, role).as_dict(),
                        "effective": effective_limits(config, issuer, bot_id, role).as_dict()}
    return result


def set_bot_override(config: Config, issuer: str, bot_id: int, role: str, values: Mapping[str, int | None],
                     language: str = "en") -> None:
    """Set a teacher's override (only the fields given; ``None`` removes it); each must be within the platform's."""
    if role not in ROLES:
        raise QuotaError("role", f"role must be one of {', '.join(ROLES)}")
    platform = platform_limits(config, issuer, role)
    for name, value in values.items():
        if value is None:
            continue
        ceiling = getattr(platform, name)
        label = i18n.text(f"quota_{name}", language)
        if value < 1:
            raise QuotaError(name, i18n.text("quota_error_at_least_one", language, field=label))
        if ceiling is not None and value > ceiling:
            raise QuotaError(name, i18n.text("quota_error_not_tighter", language, field=label, ceiling=ceiling))
    row = _bot_row(bot_id, role)
    if row is None:
        row = BotQuota(bot_id=bot_id, role=role)
        db.session.add(row)
    for name in LIMIT_FIELDS:
        if name in values:
            setattr(row, name, values[name])
    row.updated_at = utcnow()
    db.session.flush()
