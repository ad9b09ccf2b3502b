"""LTI protocol records: platforms, deployments, the tool's keys and short-lived launch state."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.extensions import UTCDateTime, db, utcnow


class Platform(db.Model):  # type: ignore[name-defined]
    """One registration of the tool on an LMS: an issuer plus the client id the LMS gave us."""

    __tablename__ = "lti_platform"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    auth_login_url: Mapped[str] = mapped_column(String(1024))
    auth_token_url: Mapped[str] = mapped_column(String(1024))
    key_set_url: Mapped[str] = mapped_column(String(1024))
    auth_audience: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    key_set: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # cached platform JWKS
    key_set_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    registered_via: Mapped[str] = mapped_column(String(16), default="manual")  # "manual" | "dynamic"
    registration_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    deployments: Mapped[list["Deployment"]] = relationship(
        back_populates="platform", cascade="all, delete-orphan", order_by="Deployment.id")

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the platform, used for frame-ancestors."""
        from urllib.parse import urlsplit

        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"


class Deployment(db.Model):  # type: ignore[name-defined]
    """A deployment id under a platform registration (Moodle: the tool type's id)."""

    __tablename__ = "lti_deployment"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platform.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    platform: Mapped[Platform] = relationship(back_populates="deployments")


class ToolKey(db.Model):  # type: ignore[name-defined]
    """An RSA key pair of the tool; the newest active one signs, retired ones stay published a while."""

    __tablename__ = "lti_tool_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # stopped signing
    unpublish_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # leaves the JWKS


class LaunchState(db.Model):  # type: ignore[name-defined]
    """Short-lived server-side launch data (OIDC state, issued nonces, used nonces), expiring."""

    __tablename__ = "lti_launch_state"
    __table_args__ = (Index("ix_lti_launch_state_expires_at", "expires_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
