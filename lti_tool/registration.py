"""LTI Dynamic Registration (Moodle-compatible): ``GET /lti/register``."""
from __future__ import annotations

from flask import Blueprint

registration_bp = Blueprint("lti_registration", __name__, url_prefix="/lti")
