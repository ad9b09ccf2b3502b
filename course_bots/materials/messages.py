"""What a teacher reads about a failed upload or ingestion: the catalogue's ``error_<code>`` in the UI language.

Loaders (``retrieval``) raise typed errors with a stable ``code`` and an English message for library users; the
product translates by code when it shows the error, filling in the limits this installation configures. A code
the catalogue does not know keeps the message it came with.
"""
from __future__ import annotations

from typing import Any

from course_bots import i18n
from course_bots.materials import operations
from course_bots.materials.models import Material
from course_bots.materials.parse_sandbox import limits_for
from lti_tool.context import current_session
from lti_tool.extensions import current_config

MB = operations.MB


def error_text(code: str | None, message: str, language: str, size: int | None = None) -> str:
    """The teacher-facing text of an error ``code`` in ``language`` (``message`` when the catalogue has none)."""
    config = current_config()
    loader, sandbox = limits_for(config)
    values: dict[str, object] = {
        "max_upload_mb": config.max_upload_mb, "max_course_mb": config.max_course_mb,
        "max_pages": loader.max_pages, "max_text_mb": sandbox.max_result_bytes // MB,
        "max_memory_mb": sandbox.max_memory_bytes // MB, "max_seconds": sandbox.max_cpu_seconds}
    if size is not None:
        values["size_mb"] = f"{size / MB:.1f}"
    return i18n.error_text(code, language, message, **values)


def material_json(material: Material, language: str | None = None) -> dict[str, Any]:
    """:func:`operations.material_json` with a failed file's error in ``language`` (default: the session's)."""
    language = language or i18n.language_of(current_session().locale)
    shown = operations.material_json(material)
    if shown.get("error"):
        error = shown["error"]
        shown["error"] = dict(error, message=error_text(error["code"], error["message"] or "", language,
                                                        material.size))
    return shown
