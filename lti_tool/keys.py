"""The tool's RSA keys: generated on first use, published as JWKS, rotated without breaking platforms' caches.

After ``lti rotate-keys`` the new key signs at once, while the old public key stays in the JWKS for
``COURSEBOTS_KEY_RETIRE_HOURS`` so that platforms that cached our JWKS, and tokens signed just before the
rotation, still verify.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from jwcrypto.jwk import JWK
from sqlalchemy import select

from lti_tool.extensions import current_config, db, utcnow
from lti_tool.models import ToolKey

logger = logging.getLogger(__name__)

KEY_SIZE = 2048


def _new_key(now: datetime) -> ToolKey:
    jwk = JWK.generate(kty="RSA", size=KEY_SIZE)
    kid = jwk.thumbprint()
    public = jwk.export_public(as_dict=True)
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    pem = jwk.export_to_pem(private_key=True, password=None).decode("ascii")
    return ToolKey(kid=kid, private_key_pem=pem, public_jwk=public, created_at=now)


def signing_key() -> ToolKey:
    """The key that signs now (the newest unretired one), generated and committed on first use."""
    key = db.session.scalars(
        select(ToolKey).where(ToolKey.retired_at.is_(None)).order_by(ToolKey.created_at.desc(), ToolKey.id.desc())
    ).first()
    if key is None:
        key = _new_key(utcnow())
        db.session.add(key)
        db.session.commit()
        logger.info("generated the tool's first signing key kid=%s", key.kid)
    return key


def published_keys(now: datetime | None = None) -> list[ToolKey]:
    """Keys whose public half is in the JWKS: the signing key and retired keys not yet unpublished."""
    now = now or utcnow()
    signing_key()
    keys = db.session.scalars(select(ToolKey).order_by(ToolKey.created_at.desc(), ToolKey.id.desc())).all()
    return [k for k in keys if k.unpublish_at is None or k.unpublish_at > now]


def jwks(now: datetime | None = None) -> dict[str, Any]:
    """The tool's JWKS document: ``{"keys": [...]}``, signing key first."""
    return {"keys": [dict(k.public_jwk) for k in published_keys(now)]}


def rotate_keys(now: datetime | None = None) -> tuple[ToolKey, list[ToolKey]]:
    """Make a new signing key; retire the old ones (published until their unpublish time) and drop expired ones."""
    now = now or utcnow()
    retire_hours = current_config().key_retire_hours
    retired = []
    for key in db.session.scalars(select(ToolKey).where(ToolKey.retired_at.is_(None))):
        key.retired_at = now
        key.unpublish_at = now + timedelta(hours=retire_hours)
        retired.append(key)
    for key in db.session.scalars(select(ToolKey).where(ToolKey.unpublish_at <= now)):
        # Past its publication window nothing can verify against it any more: forget the private key too.
        db.session.delete(key)
    new = _new_key(now)
    db.session.add(new)
    db.session.commit()
    logger.info("rotated tool keys: new kid=%s, %d retired for %d h", new.kid, len(retired), retire_hours)
    return new, retired
