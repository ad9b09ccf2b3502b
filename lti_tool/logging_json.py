"""Application logs: plain text or one JSON object per line, each with the request's id (``COURSEBOTS_LOG_FORMAT``).

A line carries the time, level, logger, message and, inside a request, ``request_id`` (the caller's
``X-Request-Id`` when it is a plain token, else generated), ``route`` (the URL rule, never the raw path or query),
and on the access line ``status`` and ``duration_ms``. Messages never carry names, e-mails or LTI user ids: the
code logs codes and ids only (tests/test_lti_tool/test_logging_json.py checks a launch and a chat).
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, g, has_request_context, request

ACCESS_LOGGER = "lti_tool.access"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def request_context() -> dict[str, Any]:
    """The request id and route of the current request (empty outside a request)."""
    if not has_request_context():
        return {}
    context: dict[str, Any] = {"request_id": getattr(g, "request_id", None)}
    if request.url_rule is not None:
        context["route"] = request.url_rule.rule
    return context


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request context and the access fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update({k: v for k, v in request_context().items() if v is not None})
        for key in ("request_id", "route", "method", "status", "duration_ms"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of ``COURSEBOTS_LOG_FORMAT`` (``json`` or ``text``)."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: str) -> None:
    """Give the root logger one stream handler in the chosen format (kept when the host already set handlers)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter_for(log_format))
        root.addHandler(handler)
    elif log_format == "json":
        for existing in root.handlers:
            if type(existing) is logging.StreamHandler:  # gunicorn/pytest capture handlers keep their own
                existing.setFormatter(JsonFormatter())
    for name in ("lti_tool", "course_bots", "retrieval"):
        logging.getLogger(name).setLevel(level.upper())


def init_app(app: Flask) -> None:
    """Give each request an id (echoed as ``X-Request-Id``) and write one access line per response."""
    access = logging.getLogger(ACCESS_LOGGER)

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.monotonic()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["X-Request-Id"] = request_id
        started = getattr(g, "request_started", None)
        duration_ms = round((time.monotonic() - started) * 1000, 1) if started is not None else None
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        access.info("%s %s %s", request.method, rule, response.status_code,
                    extra={"method": request.method, "status": response.status_code, "duration_ms": duration_ms})
        return response
