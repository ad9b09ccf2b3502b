"""Database-backed pylti1p3 tool configuration: many platforms, many client ids per issuer, many deployments.

Platform public keys come from each platform's JWKS URL and are cached in ``Platform.key_set`` for
``COURSEBOTS_PLATFORM_JWKS_CACHE_SECONDS``; a token naming an unknown ``kid`` triggers one refetch (the
platform rotated its keys).
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select

from lti_tool import safe_fetch
from lti_tool.extensions import current_config, db, utcnow
from lti_tool.keys import signing_key
from lti_tool.models import Deployment, Platform
from lti_tool.reasons import LaunchRejected

logger = logging.getLogger(__name__)

JWKS_READ_SECONDS = 5.0  # a launch waits for this at most once per key rotation


def find_platform(issuer: str, client_id: str | None) -> Platform | None:
    """The registration for this issuer and client id (or the only one of the issuer when no client id is given)."""
    query = select(Platform).where(Platform.issuer == issuer)
    if client_id:
        return db.session.scalars(query.where(Platform.client_id == client_id)).first()
    platforms = db.session.scalars(query).all()
    return platforms[0] if len(platforms) == 1 else None


def list_registrations(issuer: str | None = None) -> list[dict[str, Any]]:
    """Every registration (or one issuer's) with its deployments, as plain data: no keys or key sets."""
    query = select(Platform).order_by(Platform.id)
    if issuer is not None:
        query = query.where(Platform.issuer == issuer)
    return [{"id": p.id, "name": p.name or "", "issuer": p.issuer, "client_id": p.client_id,
             "auth_url": p.auth_login_url, "token_url": p.auth_token_url, "jwks_url": p.key_set_url,
             "registered_via": p.registered_via or "manual", "created_at": p.created_at.isoformat(),
             "deployments": [{"deployment_id": d.deployment_id, "created_at": d.created_at.isoformat()}
                             for d in p.deployments]}
            for p in db.session.scalars(query)]


def find_deployment(platform: Platform, deployment_id: str) -> Deployment | None:
    """The deployment with this id under a platform registration, if registered."""
    return db.session.scalars(select(Deployment).where(
        Deployment.platform_id == platform.id, Deployment.deployment_id == deployment_id)).first()


def _may_be_private(platform: Platform) -> bool:
    """An administrator's manual registration is trusted anywhere; a dynamic one only when its issuer is listed."""
    config = current_config()
    return platform.registered_via != "dynamic" or platform.issuer.rstrip("/") in config.registration_allowed_issuers


def _fetch_key_set(platform: Platform) -> dict[str, Any]:
    try:
        # Its URL came from the platform's own configuration in a Dynamic Registration: no SSRF through it.
        response = safe_fetch.fetch("GET", platform.key_set_url, allow_private=_may_be_private(platform),
                                    headers={"Accept": "application/json"}, read_seconds=JWKS_READ_SECONDS)
        if not response.ok:
            raise safe_fetch.FetchFailed(f"HTTP {response.status}")
        key_set = response.json()
    except (safe_fetch.FetchRefused, safe_fetch.FetchFailed, ValueError) as exc:
        logger.warning("platform JWKS unreachable issuer=%s (%s)", platform.issuer, type(exc).__name__)
        raise LaunchRejected("jwks_unreachable", platform.issuer) from exc
    if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
        logger.warning("platform JWKS is not a key set issuer=%s", platform.issuer)
        raise LaunchRejected("jwks_unreachable", platform.issuer)
    platform.key_set = key_set
    platform.key_set_fetched_at = utcnow()
    db.session.commit()
    return key_set


def _has_kid(key_set: dict[str, Any] | None, kid: str) -> bool:
    return bool(key_set) and any(k.get("kid") == kid for k in key_set.get("keys", ()))  # type: ignore[union-attr]


def platform_key_set(platform: Platform, kid: str) -> dict[str, Any]:
    """The platform's JWKS containing ``kid``: from the cache when fresh, else fetched (once more on unknown kid)."""
    max_age = timedelta(seconds=current_config().platform_jwks_cache_seconds)
    cached = platform.key_set
    fresh = cached is not None and platform.key_set_fetched_at is not None and (
        utcnow() - platform.key_set_fetched_at < max_age)
    if fresh and _has_kid(cached, kid):
        return dict(cached)  # type: ignore[arg-type]
    key_set = _fetch_key_set(platform)
    if not _has_kid(key_set, kid):
        raise LaunchRejected("unknown_kid", platform.issuer)
    return key_set


def registration_for(platform: Platform) -> Registration:
    """A pylti1p3 Registration for a platform row, with the tool's current signing key."""
    key = signing_key()
    registration = Registration()
    registration.set_issuer(platform.issuer).set_client_id(platform.client_id)
    registration.set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
    registration.set_key_set_url(platform.key_set_url)
    if platform.auth_audience:
        registration.set_auth_audience(platform.auth_audience)
    registration.set_tool_private_key(key.private_key_pem)
    return registration


class DatabaseToolConf(ToolConfAbstract):
    """pylti1p3 ToolConf reading registrations and deployments from the database."""

    def check_iss_has_one_client(self, iss: str) -> bool:
        """Every issuer may have many client ids here, so lookups always use (issuer, client id)."""
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        """See :meth:`check_iss_has_one_client`."""
        return True

    def find_registration_by_issuer(  # type: ignore[override]  # pylti1p3 checks for None
            self, iss: str, *args: Any, **kwargs: Any) -> Registration | None:
        """The registration of an issuer with exactly one client id."""
        platform = find_platform(iss, None)
        return registration_for(platform) if platform else None

    def find_registration_by_params(  # type: ignore[override]  # pylti1p3 checks for None
            self, iss: str, client_id: str | None, *args: Any, **kwargs: Any) -> Registration | None:
        """The registration for (issuer, client id); without a client id, the issuer's only one."""
        platform = find_platform(iss, client_id)
        return registration_for(platform) if platform else None

    def find_deployment(self, iss: str, deployment_id: str) -> LtiDeployment | None:
        """The deployment under an issuer's only registration."""
        platform = find_platform(iss, None)
        return self._deployment(platform, deployment_id)

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str, *args: Any,
                                  **kwargs: Any) -> LtiDeployment | None:
        """The deployment under the (issuer, client id) registration."""
        return self._deployment(find_platform(iss, client_id), deployment_id)

    @staticmethod
    def _deployment(platform: Platform | None, deployment_id: str) -> LtiDeployment | None:
        if platform is None or find_deployment(platform, deployment_id) is None:
            return None
        return LtiDeployment().set_deployment_id(deployment_id)
