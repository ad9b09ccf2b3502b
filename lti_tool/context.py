"""The contracts every page and API call relies on: roles, the launch context and the session token.

A launch produces a :class:`LaunchContext` (transient: it may hold the LTI ``sub`` and names, which are never
stored). The page then carries an encrypted, signed :class:`SessionToken` and sends it as
``Authorization: Bearer`` on its own requests — never in a URL, never depending on a cookie.
"""
from __future__ import annotations

import base64
import enum
import functools
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, TypeVar, Union, cast

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Response, g, jsonify, request

from lti_tool.config import Config
from lti_tool.extensions import current_config

F = TypeVar("F", bound=Callable[..., Any])

ROLE_PREFIXES = (
    "http://purl.imsglobal.org/vocab/lis/v2/membership#",
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#",
    "http://purl.imsglobal.org/vocab/lis/v2/system/person#",
    "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#",
)


class Role(str, enum.Enum):
    """The roles CourseBots distinguishes (everything unknown is a learner)."""

    LEARNER = "learner"
    INSTRUCTOR = "instructor"
    TEACHING_ASSISTANT = "teaching_assistant"
    CONTENT_DEVELOPER = "content_developer"
    ADMINISTRATOR = "administrator"


TEACHER_ROLES = frozenset({Role.INSTRUCTOR, Role.TEACHING_ASSISTANT, Role.CONTENT_DEVELOPER, Role.ADMINISTRATOR})

# Short role names (after the vocabulary prefix) and what they mean for us. Moodle sends editing teachers as
# Instructor, non-editing teachers as Learner, and site admins additionally as institution Administrator.
_ROLE_NAMES: dict[str, Role] = {
    "Instructor": Role.INSTRUCTOR,
    "TeachingAssistant": Role.TEACHING_ASSISTANT,
    "ContentDeveloper": Role.CONTENT_DEVELOPER,
    "Administrator": Role.ADMINISTRATOR,
    "SysAdmin": Role.ADMINISTRATOR,
    "Learner": Role.LEARNER,
    "Student": Role.LEARNER,
}


def map_roles(claim: Iterable[str] | None) -> frozenset[Role]:
    """Map an LTI ``roles`` claim (context, institution, system and sub-roles, full URIs or short) to roles."""
    roles: set[Role] = set()
    for uri in claim or ():
        if not isinstance(uri, str):
            continue
        name = uri
        for prefix in ROLE_PREFIXES:
            if uri.startswith(prefix):
                name = uri[len(prefix):]
                break
        if "membership/Instructor#TeachingAssistant" in uri:
            name = "TeachingAssistant"
        mapped = _ROLE_NAMES.get(name)
        if mapped:
            roles.add(mapped)
    return frozenset(roles or {Role.LEARNER})


def is_teacher(roles: Iterable[Role]) -> bool:
    """Whether these roles open the teacher workspace."""
    return bool(TEACHER_ROLES.intersection(roles))


@dataclass(frozen=True)
class LaunchContext:
    """What a validated launch tells us. Transient: ``user_sub`` and ``names`` are never stored."""

    issuer: str
    client_id: str
    deployment_id: str
    context_id: str
    context_title: str
    resource_link_id: str
    message_type: str  # "LtiResourceLinkRequest" | "LtiDeepLinkingRequest"
    roles: frozenset[Role]
    locale: str
    user_sub: str | None  # None for anonymous launches
    names: tuple[str, ...] = ()  # given/family/full name: only for PII scrubbing, kept inside the token
    target_link_uri: str = ""
    platform_id: int = 0
    deep_link_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_teacher(self) -> bool:
        """Whether this launch opens the teacher workspace."""
        return is_teacher(self.roles)


@dataclass(frozen=True)
class SessionToken:
    """The claims of a page's session token (encrypted and authenticated; see :func:`encode_token`)."""

    issuer: str
    deployment_id: str
    bot_id: int
    pseudonym: str
    roles: tuple[str, ...]
    locale: str
    expires_at: int
    launched_at: int
    names: tuple[str, ...] = ()
    anonymous: bool = False
    preview: bool = False  # a teacher chatting "as a student": not counted as student usage

    @property
    def role_set(self) -> frozenset[Role]:
        """The roles as enum members."""
        return frozenset(Role(r) for r in self.roles)

    @property
    def is_teacher(self) -> bool:
        """Whether this session may use teacher routes."""
        return is_teacher(self.role_set) and not self.preview

    @property
    def is_administrator(self) -> bool:
        """Whether this session may use the platform administrator's routes (never a preview)."""
        return Role.ADMINISTRATOR in self.role_set and not self.preview

    @property
    def primary_role(self) -> Role:
        """The single role shown in logs (highest privilege first)."""
        for role in (Role.ADMINISTRATOR, Role.INSTRUCTOR, Role.TEACHING_ASSISTANT, Role.CONTENT_DEVELOPER):
            if role in self.role_set:
                return role
        return Role.LEARNER


class TokenError(Exception):
    """A session token that is missing, forged, expired or past renewal."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"coursebots/session-token/v1").derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def issue_token(secret_key: str, claims: SessionToken) -> str:
    """Encrypt and sign session claims into an opaque token string."""
    payload = json.dumps(asdict(claims), separators=(",", ":")).encode("utf-8")
    return _fernet(secret_key).encrypt(payload).decode("ascii")


def decode_token(secret_key: str, token: str, now: float | None = None) -> SessionToken:
    """Decrypt and check a token; raise :class:`TokenError` when it is forged or expired."""
    try:
        payload = _fernet(secret_key).decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError, ValueError) as exc:
        raise TokenError("invalid_token",
                         "The session token is not valid. Open the tool again from the course.") from exc
    data = json.loads(payload)
    data["roles"] = tuple(data["roles"])
    data["names"] = tuple(data.get("names", ()))
    claims = SessionToken(**data)
    if claims.expires_at < (now or time.time()):
        raise TokenError("token_expired", "Your session has expired. Open the tool again from the course.")
    return claims


def new_session(launch: LaunchContext, bot_id: int, pseudonym: str, *, preview: bool = False) -> SessionToken:
    """Session claims for a fresh launch, valid for the configured token lifetime."""
    config = current_config()
    now = int(time.time())
    return SessionToken(
        issuer=launch.issuer, deployment_id=launch.deployment_id, bot_id=bot_id, pseudonym=pseudonym,
        roles=tuple(sorted(r.value for r in launch.roles)), locale=launch.locale,
        expires_at=now + config.session_token_minutes * 60, launched_at=now, names=launch.names,
        anonymous=launch.user_sub is None, preview=preview)


def renew(claims: SessionToken) -> SessionToken:
    """Extend a still-valid session (a 90-minute lecture) up to the configured maximum after launch."""
    config = current_config()
    now = int(time.time())
    limit = claims.launched_at + config.session_max_hours * 3600
    if now >= limit:
        raise TokenError("session_too_old", "This session is too old to renew. Open the tool again from the course.")
    return replace(claims, expires_at=min(limit, now + config.session_token_minutes * 60))


def api_error(code: str, message: str, status: int) -> Response:
    """The one JSON error shape: ``{"error": {"code": ..., "message": ...}}``."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def current_session() -> SessionToken:
    """The session of the current request (set by :func:`require_session`)."""
    return cast(SessionToken, g.coursebots_session)


def require_session(teacher: bool = False, administrator: bool = False) -> Callable[[F], F]:
    """Decorate an API view: require a valid bearer session token (and a teacher or administrator role if asked)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                return api_error("unauthorized", "A session token is required (Authorization: Bearer).", 401)
            try:
                claims = decode_token(current_config().secret_key, header[len("Bearer "):].strip())
            except TokenError as exc:
                return api_error(exc.code, exc.message, 401)
            if teacher and not claims.is_teacher:
                return api_error("forbidden", "Only teachers of this course may do this.", 403)
            if administrator and not claims.is_administrator:
                return api_error("forbidden", "Only administrators of this platform may do this.", 403)
            g.coursebots_session = claims
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


# Request-body limits: a view declares its own with ``max_body``; lti_tool.security refuses larger bodies unread.
Limit = Union[int, Callable[[Config], int]]
JSON_BODY_BYTES = 64 * 1024  # a question (4,000 characters), consent, feedback, codes: every small JSON body
TEXT_BODY_BYTES = 256 * 1024  # a teacher's texts: settings (8,000-character prompt) and FAQ (20,000-character answer)
_View = TypeVar("_View", bound=Callable[..., Any])


def max_body(limit: Limit, message: str | Callable[[Config], str] | None = None) -> Callable[[_View], _View]:
    """Declare the most bytes a route's request body may have (an int, or computed from the configuration)."""
    def decorator(view: _View) -> _View:
        view.max_body_bytes = limit  # type: ignore[attr-defined]
        view.max_body_message = message  # type: ignore[attr-defined]
        return view

    return decorator
