"""Security headers (pages may be framed only by registered platforms) and request-body limits per route."""
from __future__ import annotations

import secrets
import time

from flask import Flask, Response, g, request
from sqlalchemy import select
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from lti_tool.context import JSON_BODY_BYTES, Limit
from lti_tool.extensions import current_config, db
from lti_tool.models import Platform


LTI_FORM_BYTES = 256 * 1024  # the platform's form posts (a signed id_token with its claims)

_CACHE_SECONDS = 30.0
_cache: dict[str, tuple[float, tuple[str, ...]]] = {}


def platform_origins() -> tuple[str, ...]:
    """Origins of all registered platforms (cached briefly per process)."""
    now = time.monotonic()
    cached = _cache.get("origins")
    if cached and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    origins = tuple(sorted({p.origin for p in db.session.scalars(select(Platform))}))
    _cache["origins"] = (now, origins)
    return origins


def forget_platform_origins() -> None:
    """Drop the cached origins (after a registration or removal)."""
    _cache.clear()


def allow_framing_by(*origins: str) -> None:
    """Let the current response be framed by these origins (``"*"`` for any) instead of the platforms."""
    g.frame_ancestors = origins


def csp_nonce() -> str:
    """A per-response nonce for the few inline scripts and styles (auto-post forms, frame close)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


def body_limit(app: Flask, endpoint: str | None) -> tuple[int, str | None]:
    """The body limit of an endpoint (its ``max_body`` or the default by blueprint) and its refusal message."""
    view = app.view_functions.get(endpoint or "")
    limit: Limit | None = getattr(view, "max_body_bytes", None)
    message = getattr(view, "max_body_message", None)
    if limit is None:
        limit = LTI_FORM_BYTES if (endpoint or "").startswith(("lti.", "lti_registration.")) else JSON_BODY_BYTES
    if callable(limit):
        limit = limit(current_config())
    if callable(message):
        message = message(current_config())
    return int(limit), message


def _refuse_oversize_bodies(app: Flask) -> None:
    """Before a view runs: too large by Content-Length is refused unread; a chunked body is cut at the limit."""
    limit, message = body_limit(app, request.endpoint)
    request.max_content_length = limit  # werkzeug stops reading a body without Content-Length at the limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(message or f"This request may carry at most {_size(limit)}.")
    if b"%00" in request.query_string or b"\x00" in request.query_string:
        raise BadRequest("Parameters must not contain NUL characters.")


def _size(limit: int) -> str:
    return f"{limit / 1e6:g} MB" if limit >= 1_000_000 else f"{limit // 1024} KiB"


def init_app(app: Flask) -> None:
    """Install the request-body limit and the after-request hook that sets security headers."""
    app.context_processor(lambda: {"csp_nonce": csp_nonce()})
    app.before_request(lambda: _refuse_oversize_bodies(app))

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html" and "Content-Security-Policy" not in response.headers:
            ancestors = getattr(g, "frame_ancestors", None)
            if ancestors is None:
                try:
                    ancestors = platform_origins()
                except Exception:  # no tables yet (before the first migration): only self
                    ancestors = ()
            frame = " ".join(ancestors) if "*" not in ancestors else "*"
            nonce = csp_nonce()
            response.headers["Content-Security-Policy"] = (
                f"frame-ancestors 'self' {frame}".strip() + "; default-src 'self'; img-src 'self' data:; "
                f"script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
                "object-src 'none'; base-uri 'none'")
        return response
