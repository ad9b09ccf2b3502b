"""Security headers: pages may be framed only by registered platforms (CSP frame-ancestors)."""
from __future__ import annotations

import secrets
import time

from flask import Flask, Response, g
from sqlalchemy import select

from lti_tool.extensions import db

_CACHE_SECONDS = 30.0
_cache: dict[str, tuple[float, tuple[str, ...]]] = {}


def platform_origins() -> tuple[str, ...]:
    """Origins of all registered platforms (cached briefly per process)."""
    from lti_tool.models import Platform

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


def init_app(app: Flask) -> None:
    """Install the after-request hook that sets security headers."""
    app.context_processor(lambda: {"csp_nonce": csp_nonce()})

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
