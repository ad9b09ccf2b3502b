"""Plugs the product into the app shell: blueprints, the launch handler and CLI groups."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register course_bots' blueprints, CLI commands and hooks on the app."""
