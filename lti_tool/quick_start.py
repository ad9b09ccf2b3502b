"""Quick-start secrets: generated once into the instance folder when no secret is configured (SQLite only)."""
from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

SECRETS_FILE = "secrets.json"


def quick_start_secrets(instance_path: Path) -> dict[str, str]:
    """Load the generated secrets of a quick-start installation, creating them once."""
    secrets_path = instance_path / SECRETS_FILE
    if secrets_path.exists():
        stored = json.loads(secrets_path.read_text(encoding="utf-8"))
        return {"secret_key": stored["secret_key"], "pseudonym_key": stored["pseudonym_key"]}
    instance_path.mkdir(parents=True, exist_ok=True)
    generated = {"secret_key": secrets.token_urlsafe(48), "pseudonym_key": secrets.token_urlsafe(48)}
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(generated, handle)
    logger.warning("Quick-start mode: generated COURSEBOTS_SECRET_KEY and COURSEBOTS_PSEUDONYM_KEY into %s. "
                   "Back this file up; set both variables explicitly for production.", secrets_path)
    return generated
