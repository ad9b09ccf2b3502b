"""Privacy rules: per-course pseudonyms (the frozen contract) and, around them, scrubbing and retention."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets


def pseudonym(key: str, issuer: str, sub: str, bot_id: int) -> str:
    """HMAC-SHA256(key, json.dumps([issuer, sub, bot_id])) as hex: stable per course, unlinkable across courses."""
    message = json.dumps([issuer, sub, bot_id]).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def anonymous_pseudonym() -> str:
    """A per-session pseudonym for launches without ``sub`` (never linkable to anything)."""
    return "anon-" + secrets.token_hex(28)
