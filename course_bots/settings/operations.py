"""Reading and changing a bot's teacher settings, with prompt versions (services flush; views commit)."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from course_bots import backends
from course_bots.errors import ServiceError
from course_bots.settings.models import (
    ANSWER_LANGUAGES, TEACHING_MODES, UNCOVERED_BEHAVIOURS, BotSettings, CopyCode, PromptVersion, mode_prompt)
from lti_tool.extensions import current_config, db, utcnow

logger = logging.getLogger(__name__)

TEMPERATURE_RANGE = (0.0, 1.5)
MAX_TOKENS_RANGE = (64, 4096)
COPY_CODE_HOURS = 72
_TEXT_LIMITS = {"name": 120, "welcome_message": 2000, "system_prompt": 8000, "pause_message": 1000}


class SettingsError(ServiceError, ValueError):
    """A settings value outside what the admin allows (400 ``invalid_setting``); ``field`` names it for the form."""

    def __init__(self, field: str, message: str) -> None:
        """Keep the field's name with the API's code and message."""
        super().__init__("invalid_setting", message)
        self.field = field


def default_settings(bot_id: int, language: str = "en") -> BotSettings:
    """A bot's settings before a teacher saved any: the tutor template in ``language`` (not added to the session)."""
    return BotSettings(bot_id=bot_id, name="", welcome_message="", system_prompt=mode_prompt("tutor", language),
                       answer_language="auto", teaching_mode="tutor", temperature=0.2, max_answer_tokens=512,
                       model_key="", uncovered_behaviour="refuse", paused=False, pause_message="",
                       updated_at=utcnow())


def get_settings(bot_id: int, language: str = "en") -> BotSettings:
    """The bot's settings for reading: the stored row, or the defaults without writing anything."""
    settings = db.session.get(BotSettings, bot_id)
    return settings if settings is not None else default_settings(bot_id, language)


def settings_for_update(bot_id: int, language: str = "en") -> BotSettings:
    """The bot's stored settings row for changing, created with the defaults once even when requests race."""
    settings = db.session.get(BotSettings, bot_id)
    if settings is not None:
        return settings
    values = {column.key: getattr(default_settings(bot_id, language), column.key)
              for column in BotSettings.__table__.columns}
    insert = sqlite_insert if db.session.get_bind().dialect.name == "sqlite" else postgresql_insert
    # Insert-or-ignore: of two first writers one inserts, the other finds the row (no IntegrityError, no 500).
    db.session.execute(insert(BotSettings).values(**values).on_conflict_do_nothing(index_elements=["bot_id"]))
    return db.session.get_one(BotSettings, bot_id, populate_existing=True)


def settings_dict(settings: BotSettings) -> dict[str, Any]:
    """The settings as the API returns them."""
    return {"name": settings.name, "welcome_message": settings.welcome_message,
            "system_prompt": settings.system_prompt, "answer_language": settings.answer_language,
            "teaching_mode": settings.teaching_mode, "temperature": settings.temperature,
            "max_answer_tokens": settings.max_answer_tokens, "model_key": settings.model_key,
            "uncovered_behaviour": settings.uncovered_behaviour, "paused": settings.paused,
            "pause_message": settings.pause_message, "updated_at": settings.updated_at.isoformat()}


def update_settings(settings: BotSettings, data: Mapping[str, Any], role: str,
                    allowed_models: tuple[str, ...] = ()) -> list[str]:
    """Validate and apply a partial update; a changed prompt becomes a new version. Returns changed fields."""
    changed: list[str] = []
    for field, limit in _TEXT_LIMITS.items():
        if field in data:
            value = data[field]
            if not isinstance(value, str) or len(value) > limit:
                raise SettingsError(field, f"{field} must be text of at most {limit} characters.")
            if value != getattr(settings, field):
                setattr(settings, field, value)
                changed.append(field)
    choices = {"answer_language": ANSWER_LANGUAGES, "teaching_mode": TEACHING_MODES,
               "uncovered_behaviour": UNCOVERED_BEHAVIOURS}
    for field, allowed in choices.items():
        if field in data and data[field] != getattr(settings, field):
            if data[field] not in allowed:
                raise SettingsError(field, f"{field} must be one of {', '.join(allowed)}.")
            setattr(settings, field, data[field])
            changed.append(field)
    if "temperature" in data:
        value = _number(data["temperature"], "temperature", *TEMPERATURE_RANGE)
        if value != settings.temperature:
            settings.temperature, changed = value, changed + ["temperature"]
    if "max_answer_tokens" in data:
        tokens = int(_number(data["max_answer_tokens"], "max_answer_tokens", *MAX_TOKENS_RANGE))
        if tokens != settings.max_answer_tokens:
            settings.max_answer_tokens, changed = tokens, changed + ["max_answer_tokens"]
    if "model_key" in data and data["model_key"] != settings.model_key:
        if data["model_key"] and data["model_key"] not in allowed_models:
            raise SettingsError("model_key", "This model is not in the catalogue.")
        settings.model_key, changed = str(data["model_key"]), changed + ["model_key"]
    if "paused" in data and bool(data["paused"]) != settings.paused:
        settings.paused, changed = bool(data["paused"]), changed + ["paused"]
    if changed:
        settings.updated_at = utcnow()
    if "system_prompt" in changed:
        db.session.add(PromptVersion(bot_id=settings.bot_id, prompt=settings.system_prompt, role=role,
                                     created_at=utcnow()))
    db.session.flush()
    return changed


def _number(value: Any, field: str, low: float, high: float) -> float:
    """A number within [low, high] or a :class:`SettingsError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(field, f"{field} must be a number.") from None
    if not low <= number <= high:
        raise SettingsError(field, f"{field} must be between {low:g} and {high:g}.")
    return number


def prompt_versions(bot_id: int, limit: int = 50) -> list[PromptVersion]:
    """The saved prompts, newest first."""
    query = select(PromptVersion).filter_by(bot_id=bot_id).order_by(PromptVersion.id.desc()).limit(limit)
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class IssuedCode:
    """A copy code in clear text (shown once) and when it stops working."""

    code: str
    expires_at: str


def _hash_code(code: str) -> str:
    """Codes are stored hashed (keyed by the secret key) so a database reader cannot use them."""
    key = current_config().secret_key.encode("utf-8")
    return hashlib.sha256(key + b"/copy-code/" + code.strip().upper().replace("-", "").encode("ascii")).hexdigest()


def issue_copy_code(bot_id: int) -> IssuedCode:
    """A new one-time code for copying this bot into another course."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    expires = utcnow() + timedelta(hours=COPY_CODE_HOURS)
    db.session.add(CopyCode(code_hash=_hash_code(raw), bot_id=bot_id, expires_at=expires))
    db.session.flush()
    return IssuedCode("-".join(raw[i:i + 4] for i in range(0, 12, 4)), expires.isoformat())


def redeem_copy_code(code: str, target_bot_id: int) -> int | None:
    """Mark a valid code used and return its source bot id (None when unknown, used, expired or the same bot)."""
    try:
        digest = _hash_code(code)
    except UnicodeEncodeError:
        return None
    record = db.session.scalars(select(CopyCode).filter_by(code_hash=digest)).first()
    if record is None or record.used_at is not None or record.expires_at < utcnow():
        return None
    if record.bot_id == target_bot_id:
        return None
    record.used_at = utcnow()
    db.session.flush()
    return record.bot_id


def copy_settings(source_bot_id: int, target_bot_id: int, role: str) -> None:
    """Copy settings and the current prompt (as a new version) from one bot to another; never logs."""
    source = get_settings(source_bot_id)
    target = settings_for_update(target_bot_id)
    data = settings_dict(source)
    data.pop("updated_at")
    update_settings(target, data, role, allowed_models=(source.model_key,) if source.model_key else ())


def external_model_name(bot_id: int) -> str | None:
    """The model's label when the bot's answers come from outside the institution (consent asks again)."""
    config = current_config()
    entry = backends.entry_for(config, get_settings(bot_id).model_key)
    return entry.label if entry.external else None


def model_kind(bot_id: int) -> str:
    """Who writes the bot's answers: ``external`` (a model outside), ``local`` (the institution's) or ``extractive``."""
    entry = backends.entry_for(current_config(), get_settings(bot_id).model_key)
    return "external" if entry.external else "extractive" if entry.extractive else "local"
