"""``/api/v1/bots/<bot_id>/materials/<material_id>/pages``: what the bot read of a file, and page edits."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from course_bots.materials import jobs as ingest_worker
from course_bots.materials import messages
from course_bots.materials import operations as svc
from course_bots.materials import pages
from course_bots.materials.api import teacher_only
from course_bots.materials.models import Material, MaterialStatus
from course_bots.schemas import PageEdit, PreviousEditDecision, parse_body
from lti_tool.context import TEXT_BODY_BYTES, JSON_BODY_BYTES, api_error, max_body
from lti_tool.extensions import db

bp = Blueprint("api_material_pages", __name__, url_prefix="/api/v1/bots/<int:bot_id>/materials/<int:material_id>")


def _not_found() -> Response:
    return api_error("not_found", "This material does not exist (any more).", 404)


@bp.get("/pages")
@teacher_only
def list_pages(bot_id: int, material_id: int) -> Response:
    """Every page (slide, section) with its extracted text, the teacher's edits and the passages the search uses."""
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    return jsonify(pages.pages_json(material))


def _answer(material: Material, reindexed: bool = True) -> tuple[Response, int]:
    """Commit, re-index this file only (202), and answer with its pages and its row (200 when nothing is indexed)."""
    db.session.commit()
    if reindexed and material.status == MaterialStatus.QUEUED:
        ingest_worker.dispatch([material.id])
    body = {"material": messages.material_json(material), "pages": pages.pages_json(material)}
    return jsonify(body), 202 if reindexed else 200


@bp.put("/pages/<int:number>")
@max_body(TEXT_BODY_BYTES)
@teacher_only
def edit_page(bot_id: int, material_id: int, number: int) -> tuple[Response, int] | Response:
    """Exclude a page, replace its text, or restore it (neither); the file is re-indexed."""
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    body = parse_body(PageEdit)
    pages.set_page_edit(material, number, body.excluded, body.replacement)
    return _answer(material)


@bp.patch("/pages/<int:number>")
@max_body(JSON_BODY_BYTES)
@teacher_only
def decide_previous(bot_id: int, material_id: int, number: int) -> tuple[Response, int] | Response:
    """Keep an earlier version's edit of this page (applied from now on) or drop it."""
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    return _answer(material, pages.decide_previous(material, number, parse_body(PreviousEditDecision).keep))
