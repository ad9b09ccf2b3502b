"""Teacher routes for a bot: settings, prompt history, templates, models, preview, copy codes and deletion."""
from __future__ import annotations

import logging
from dataclasses import replace

from flask import Blueprint, Response, jsonify

from course_bots.bots import own_bot
from course_bots.models import CourseBot
from course_bots.settings.models import MODE_PROMPTS
from course_bots import backends
from course_bots.materials import jobs as ingest_worker, operations as materials
from course_bots.privacy import operations as privacy_ops
from course_bots.settings.operations import (
    copy_settings, get_settings, issue_copy_code, prompt_versions, redeem_copy_code, settings_dict,
    settings_for_update, update_settings)
from course_bots.schemas import CopyFrom, DeleteBot, SettingsChange, parse_body
from lti_tool.context import (
    JSON_BODY_BYTES, TEXT_BODY_BYTES, api_error, current_session, issue_token, max_body, require_session)
from lti_tool.extensions import current_config, db

logger = logging.getLogger(__name__)

bp = Blueprint("api_bot_settings", __name__, url_prefix="/api/v1/bots/<int:bot_id>")


def _language() -> str:
    """The session's UI language (de/en)."""
    locale = (current_session().locale or "en").replace("_", "-").split("-")[0].lower()
    return locale if locale in ("de", "en") else "en"


@bp.get("/settings")
@require_session(teacher=True)
@own_bot
def read_settings(bot_id: int) -> Response:
    """The bot's settings, the models teachers may pick and the teaching-mode templates."""
    settings = get_settings(bot_id, _language())  # the defaults until a teacher saves: reading writes nothing
    config = current_config()
    models = [backends.default_entry(config).public()] + [
        e.public() for e in backends.catalogue(config, current_session().issuer)]
    return jsonify({"settings": settings_dict(settings), "models": models, "templates": MODE_PROMPTS})


@bp.put("/settings")
@max_body(TEXT_BODY_BYTES)
@require_session(teacher=True)
@own_bot
def write_settings(bot_id: int) -> Response:
    """Change settings (partial update); a changed prompt is saved as a new version."""
    body = parse_body(SettingsChange).model_dump(exclude_unset=True)
    settings = settings_for_update(bot_id, _language())
    allowed = tuple(e.key for e in backends.catalogue(current_config(), current_session().issuer))
    changed = update_settings(settings, body, current_session().primary_role.value, allowed)
    _audit(bot_id, "settings_changed", {"fields": changed})
    db.session.commit()
    logger.info("bot %s settings changed: %s", bot_id, ",".join(changed))
    return jsonify({"settings": settings_dict(settings), "changed": changed})


@bp.get("/settings/prompts")
@require_session(teacher=True)
@own_bot
def prompt_history(bot_id: int) -> Response:
    """Saved prompt versions, newest first, with role and time."""
    return jsonify({"versions": [{"id": v.id, "prompt": v.prompt, "role": v.role,
                                  "created_at": v.created_at.isoformat()} for v in prompt_versions(bot_id)]})


@bp.post("/preview")
@require_session(teacher=True)
@own_bot
def preview_token(bot_id: int) -> Response:
    """A session token to chat as a student would, not counted as student usage."""
    claims = replace(current_session(), preview=True)
    return jsonify({"token": issue_token(current_config().secret_key, claims), "expires_at": claims.expires_at})


@bp.post("/copy-code")
@require_session(teacher=True)
@own_bot
def new_copy_code(bot_id: int) -> Response:
    """A one-time code to copy this bot into a new course (shown once)."""
    issued = issue_copy_code(bot_id)
    _audit(bot_id, "copy_code_issued", {})
    db.session.commit()
    return jsonify({"code": issued.code, "expires_at": issued.expires_at}), 201  # type: ignore[return-value]


@bp.post("/copy-from")
@max_body(JSON_BODY_BYTES)
@require_session(teacher=True)
@own_bot
def copy_from(bot_id: int) -> Response:
    """Copy settings, prompt, materials and FAQ (never logs) from the bot a code was issued for."""
    code = parse_body(CopyFrom).code
    source = redeem_copy_code(code, bot_id)
    if source is None:
        db.session.rollback()
        return api_error("invalid_copy_code", "This copy code is unknown, used or expired.", 400)
    copy_settings(source, bot_id, current_session().primary_role.value)
    copied, queued = _copy_materials(source, bot_id)
    _audit(bot_id, "bot_copied", {"materials": copied})
    db.session.commit()
    if queued:
        ingest_worker.dispatch(queued)  # after the commit, so workers see the rows
    return jsonify({"copied": True, "materials": copied})


def _copy_materials(source: int, target: int) -> tuple[int, list[int]]:
    """Copy the source bot's materials and FAQ entries; returns how many, and the materials to ingest."""
    queued: list[int] = []
    copied = 0
    storage = materials.current_storage()
    for material in materials.list_materials(source):
        if material.replaces_id is not None and material.status != "ready":
            continue
        try:
            data = storage.get(material.storage_key)
            result = materials.upload_material(target, material.filename, data, material.media_type,
                                               material.title)
        except (materials.StorageError, materials.MaterialError) as exc:
            logger.warning("material %s not copied: %s", material.id, type(exc).__name__)
            continue
        result.material.students_may_open = material.students_may_open
        if materials.copy_page_edits(material, result.material) and not result.queued:
            materials.reindex_material(result.material)  # the copied page edits apply from its next index
            queued.append(result.material.id)
        copied += 1
        if result.queued:
            queued.append(result.material.id)
    for entry in materials.list_faq(source):
        materials.create_faq(target, entry.question, entry.answer)
        copied += 1
    return copied, queued


@bp.delete("")
@max_body(JSON_BODY_BYTES)
@require_session(teacher=True)
@own_bot
def delete_bot(bot_id: int) -> Response:
    """Delete the course bot with all its data (a new launch creates a fresh one)."""
    parse_body(DeleteBot)  # {"confirm": "delete"}, or 400 confirmation_required
    if db.session.get(CourseBot, bot_id) is None:
        return api_error("not_found", "This bot does not exist.", 404)
    session = current_session()
    # The privacy service deletes files through its hooks and keeps the audit entry after the bot is gone.
    privacy_ops.delete_bot(bot_id, reason="teacher", actor_role=session.primary_role.value,
                           actor_pseudonym=session.pseudonym)
    db.session.commit()
    logger.info("bot %s deleted by a teacher", bot_id)
    return Response(status=204)


def _audit(bot_id: int, action: str, details: dict[str, object]) -> None:
    """An audit entry through the privacy service (who by role and pseudonym, what, when; no content)."""
    privacy_ops.audit_session(current_session(), action, target_type="course_bot", target_id=bot_id,
                              details=dict(details))
