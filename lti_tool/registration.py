"""LTI Dynamic Registration (Moodle-compatible)."""
from __future__ import annotations

from flask import Blueprint

registration_bp = Blueprint("lti_registration", __name__, url_prefix="/lti")
