"""Blueprint ``pages``: the product's templates and static files (pages are reached through a launch)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint

PACKAGE = Path(__file__).resolve().parent.parent

bp = Blueprint("pages", __name__, template_folder=str(PACKAGE / "templates"),
               static_folder=str(PACKAGE / "static"), static_url_path="/static/coursebots")
