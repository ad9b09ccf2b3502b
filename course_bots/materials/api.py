"""``/api/v1/bots/<bot_id>/materials`` and ``/faq``: the teacher's materials and FAQ, and signed file links."""
from __future__ import annotations

from typing import Any, Callable, TypeVar
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from course_bots import i18n
from course_bots.bots import own_bot
from course_bots.materials.models import MaterialStatus
from course_bots.materials import jobs as ingest_worker
from course_bots.materials import messages
from course_bots.materials import operations as svc
from course_bots.materials.pages import edit_counts
from course_bots.materials.links import LINK_SECONDS, check_signature, material_file_url
from course_bots.materials.storage import StorageError, current_storage
from course_bots.schemas import FaqBody, MaterialChange, parse_body, query_int
from lti_tool.config import Config
from lti_tool.context import JSON_BODY_BYTES, TEXT_BODY_BYTES, api_error, current_session, max_body, require_session
from lti_tool.extensions import current_config, db
from retrieval.errors import FileTooLargeError

bp = Blueprint("api_materials", __name__, url_prefix="/api/v1/bots/<int:bot_id>")
F = TypeVar("F", bound=Callable[..., Any])
FILES_PER_UPLOAD = 20  # files one upload request may carry; each is parsed after the previous one
MULTIPART_OVERHEAD_BYTES = svc.MB  # part headers and boundaries of a multipart body
# Shown inline by the browser's own viewer; everything else (HTML, SVG, Office files, text) is downloaded.
INLINE_MEDIA_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"})


def upload_bytes(config: Config) -> int:
    """The most bytes one upload request may have: the per-file limit for each of its files."""
    return FILES_PER_UPLOAD * config.max_upload_mb * svc.MB + MULTIPART_OVERHEAD_BYTES


def upload_too_large(config: Config) -> str:
    """What a teacher reads when an upload request is larger than :func:`upload_bytes`."""
    return f"Upload at most {FILES_PER_UPLOAD} files of at most {config.max_upload_mb} MB each at once."


def teacher_only(view: F) -> F:
    """Teacher session of this bot."""
    return require_session(teacher=True)(own_bot(view))


def _not_found() -> Response:
    return api_error("not_found", "This material does not exist (any more).", 404)


@bp.get("/materials")
@teacher_only
def list_materials(bot_id: int) -> Response:
    """Every material with status, progress, pages and chunk count, plus the course's storage use."""
    _, failed = ingest_worker.recover_stale(bot_id)  # cheap; keeps a crashed job from looking stuck
    items = svc.list_materials(bot_id)
    config = current_config()
    if any(m.status == MaterialStatus.QUEUED for m in items):
        ingest_worker.wake_local()  # after a restart, queued files wait for this process's worker
    edits = edit_counts(m.id for m in items)  # pages excluded or replaced, earlier versions' edits to review
    return jsonify({"materials": [dict(messages.material_json(m), page_edits=edits[m.id]) for m in items],
                    "usage": {"bytes": svc.course_bytes(bot_id), "limit_bytes": config.max_course_mb * svc.MB,
                              "file_limit_bytes": config.max_upload_mb * svc.MB}})


@bp.post("/materials")
@max_body(upload_bytes, upload_too_large)
@teacher_only
def upload(bot_id: int) -> tuple[Response, int] | Response:
    """Upload one or more files (multipart field ``file``); each is queued for ingestion."""
    config = current_config()
    try:
        files = request.files.getlist("file")
    except RequestEntityTooLarge:  # a chunked body is cut at upload_bytes() while it is read
        return api_error("too_large", upload_too_large(config), 413)
    if len(files) > FILES_PER_UPLOAD:
        return api_error("too_many_files", upload_too_large(config), 413)
    if not files:
        return api_error("no_file", "Choose a file to upload (multipart field \"file\").", 400)
    results: list[svc.UploadResult] = []
    errors: list[svc.MaterialError] = []
    names: list[str] = []
    for storage in files:
        limit = config.max_upload_mb * svc.MB
        data = storage.stream.read(limit + 1)  # never more than the limit in memory
        try:
            if len(data) > limit:
                storage.stream.seek(0, 2)
                raise svc.MaterialError("too_large", FileTooLargeError(storage.stream.tell(), limit).message, 413)
            result = svc.upload_material(bot_id, storage.filename or "upload", data, storage.mimetype or None)
        except svc.MaterialError as exc:
            errors.append(exc)
            names.append(svc.sanitise_filename(storage.filename or ""))
            continue
        results.append(result)
    if not results:
        raise errors[0]  # no file was taken: the first refusal answers (the service-error handler)
    db.session.commit()
    ingest_worker.dispatch([r.material.id for r in results if r.queued])
    language = i18n.language_of(current_session().locale)
    body = {"materials": [dict(messages.material_json(r.material), queued=r.queued) for r in results],
            "errors": [{"filename": name, "code": e.code, "message": messages.error_text(e.code, e.message, language)}
                       for name, e in zip(names, errors)]}
    return jsonify(body), 201 if any(r.queued for r in results) else 200


@bp.get("/materials/<int:material_id>")
@teacher_only
def show(bot_id: int, material_id: int) -> Response:
    """One material's status and progress (what the page polls while it ingests)."""
    material = svc.get_material(bot_id, material_id)
    return jsonify(messages.material_json(material)) if material is not None else _not_found()


@bp.patch("/materials/<int:material_id>")
@max_body(JSON_BODY_BYTES)
@teacher_only
def change(bot_id: int, material_id: int) -> Response:
    """Toggle ``students_may_open`` (students may open the original file from a citation)."""
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    svc.set_students_may_open(material, parse_body(MaterialChange).students_may_open)
    db.session.commit()
    return jsonify(messages.material_json(material))


@bp.delete("/materials/<int:material_id>")
@teacher_only
def delete(bot_id: int, material_id: int) -> tuple[str, int] | Response:
    """Delete a material: its chunks, its file and its place in every search index."""
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    svc.delete_material(material)
    db.session.commit()
    return "", 204


@bp.post("/materials/<int:material_id>/reindex")
@teacher_only
def reindex(bot_id: int, material_id: int) -> tuple[Response, int] | Response:
    """Parse and embed one material again."""
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    svc.reindex_material(material)
    db.session.commit()
    ingest_worker.dispatch([material.id])
    return jsonify(messages.material_json(material)), 202


@bp.post("/materials/reindex")
@teacher_only
def reindex_all(bot_id: int) -> tuple[Response, int]:
    """Re-index every material of the course (e.g. after the embedding model changed)."""
    items = svc.list_materials(bot_id)
    for material in items:
        svc.reindex_material(material)
    db.session.commit()
    ingest_worker.dispatch([m.id for m in items])
    return jsonify({"queued": [m.id for m in items]}), 202


@bp.get("/materials/<int:material_id>/link")
@require_session()
@own_bot
def file_link(bot_id: int, material_id: int) -> Response:
    """A signed URL (valid minutes) to the original file at ``?page=N``; students only when the teacher allows."""
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    if not material.students_may_open and not current_session().is_teacher:
        return api_error("forbidden", "The teacher has not made this file available to open.", 403)
    page = query_int("page", 0, 0, 1_000_000) or None
    return jsonify({"url": material_file_url(bot_id, material_id, page), "expires_in": LINK_SECONDS})


@bp.get("/materials/<int:material_id>/file")
def file(bot_id: int, material_id: int) -> Response:
    """The original file; the short-lived signature in ``?sig=`` is the only credential (opens in a new tab)."""
    if not check_signature(bot_id, material_id, request.args.get("sig", "")):
        return api_error("invalid_link", "This link has expired. Click the citation again.", 403)
    material = svc.get_material(bot_id, material_id)
    if material is None:
        return _not_found()
    try:
        data = current_storage().get(material.storage_key)
    except StorageError:
        return api_error("file_missing", "The original file is not available.", 404)
    return original_file_response(data, material.media_type, material.filename)


def original_file_response(data: bytes, media_type: str, filename: str) -> Response:
    """An uploaded file as served from our origin: PDFs and images inline, anything else as a download.

    A teacher's HTML (or SVG) shown inline would be a page on the tool's origin; as an attachment, sandboxed and
    never sniffed, it cannot act as one.
    """
    inline = media_type in INLINE_MEDIA_TYPES
    response = Response(data, mimetype=media_type)
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if media_type != "application/pdf":  # the browser's PDF viewer does not run in a sandboxed document
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    return response


# --- FAQ -------------------------------------------------------------------------------------------------------

def _faq_body() -> tuple[str, str]:
    body = parse_body(FaqBody)
    return body.question, body.answer


@bp.get("/faq")
@teacher_only
def faq_list(bot_id: int) -> Response:
    """The course's FAQ entries."""
    return jsonify({"faq": [svc.faq_json(e) for e in svc.list_faq(bot_id)]})


@bp.post("/faq")
@max_body(TEXT_BODY_BYTES)
@teacher_only
def faq_create(bot_id: int) -> tuple[Response, int] | Response:
    """Add a question with the teacher's answer (retrieved with a boost from now on)."""
    entry = svc.create_faq(bot_id, *_faq_body())
    db.session.commit()
    return jsonify(svc.faq_json(entry)), 201


@bp.route("/faq/<int:faq_id>", methods=["PUT", "PATCH"])
@max_body(TEXT_BODY_BYTES)
@teacher_only
def faq_update(bot_id: int, faq_id: int) -> Response:
    """Change an FAQ entry."""
    entry = svc.get_faq(bot_id, faq_id)
    if entry is None:
        return api_error("not_found", "This FAQ entry does not exist.", 404)
    svc.update_faq(entry, *_faq_body())
    db.session.commit()
    return jsonify(svc.faq_json(entry))


@bp.delete("/faq/<int:faq_id>")
@teacher_only
def faq_delete(bot_id: int, faq_id: int) -> tuple[str, int] | Response:
    """Delete an FAQ entry."""
    entry = svc.get_faq(bot_id, faq_id)
    if entry is None:
        return api_error("not_found", "This FAQ entry does not exist.", 404)
    svc.delete_faq(entry)
    db.session.commit()
    return "", 204
