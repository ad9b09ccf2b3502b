"""Short-lived signed links that let a student open an original file at a cited page (when the teacher allows)."""
from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from lti_tool.extensions import current_config

LINK_SECONDS = 600  # long enough to click a citation, short enough that a shared link soon stops working
_SALT = "coursebots.material-file.v1"


def _signer() -> TimestampSigner:
    return TimestampSigner(current_config().secret_key, salt=_SALT)


def _payload(bot_id: int, material_id: int) -> str:
    return f"{bot_id}.{material_id}"


def file_signature(bot_id: int, material_id: int) -> str:
    """A timestamped signature naming exactly this bot's material (the URL's only credential)."""
    return _signer().sign(_payload(bot_id, material_id)).decode("ascii").split(".", 2)[-1]


def check_signature(bot_id: int, material_id: int, sig: str, max_age: int = LINK_SECONDS) -> bool:
    """Whether ``sig`` was issued for this bot's material within ``max_age`` seconds."""
    try:
        _signer().unsign(f"{_payload(bot_id, material_id)}.{sig}", max_age=max_age)
    except (SignatureExpired, BadSignature):
        return False
    return True


def material_file_url(bot_id: int, material_id: int, page: int | None = None, absolute: bool = True) -> str:
    """The signed URL of a material's original file, opening at ``page`` in PDF viewers."""
    path = f"/api/v1/bots/{bot_id}/materials/{material_id}/file?sig={file_signature(bot_id, material_id)}"
    if page:
        path += f"#page={int(page)}"
    return current_config().url(path) if absolute else path
