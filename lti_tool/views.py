"""Blueprint ``lti``: OIDC login, launch, JWKS, Dynamic Registration (protocol only; no product logic)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("lti", __name__, url_prefix="/lti", template_folder="templates")
