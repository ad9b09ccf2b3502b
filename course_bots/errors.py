"""The product's one service error: a request a service cannot honour, with the API's code, message and status.

Each feature's refusals subclass :class:`ServiceError` (``ConversationError``, ``ConsentError``, ``MaterialError``,
``SettingsError``). Views let them rise: the one handler that :func:`init_app` registers rolls the request's
database work back and answers the API's error shape ``{"error": {"code", "message"}}`` with the error's status.
"""
from __future__ import annotations

from flask import Flask, Response

from course_bots import i18n
from lti_tool.context import api_error
from lti_tool.extensions import db


class ServiceError(Exception):
    """A refusal a person must act on; ``code`` for programs, ``message`` for people, ``status`` for HTTP."""

    default_status = 400

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        """Keep code, message and the HTTP status a view answers with (the class's default when not given)."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = self.default_status if status is None else status


def error_response(exc: ServiceError) -> Response:
    """Roll back what the refused request did and answer the API's error shape with the error's status.

    The message is the catalogue's ``error_<code>`` in the request's language when it has one (so a German page
    shows German), else the service's own message.
    """
    db.session.rollback()
    return api_error(exc.code, i18n.error_text(exc.code, i18n.request_language(), exc.message), exc.status)


def init_app(app: Flask) -> None:
    """Register the one handler that turns any service error into the API's error shape."""
    app.register_error_handler(ServiceError, error_response)
