"""UI message catalogues (one JSON file per language in ``static/i18n``), shared by templates, scripts and services.

``de.json`` addresses users formally (*Sie*); ``de-du.json`` overrides the messages that address users for the
informal *du*. ``COURSEBOTS_GERMAN_ADDRESS`` chooses one of the two for the whole installation. Services take
their user-facing texts from here (:func:`text`), so that a translation is one file per language.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from flask import g, has_app_context, has_request_context, request

from lti_tool.extensions import current_config

CATALOGUE_DIR = Path(__file__).resolve().parent / "static" / "i18n"
LANGUAGES = ("de", "en")
ADDRESSES = ("sie", "du")


def _read(name: str) -> dict[str, Any]:
    """One catalogue file as a dict."""
    return dict(json.loads((CATALOGUE_DIR / f"{name}.json").read_text(encoding="utf-8")))


@functools.lru_cache(maxsize=None)
def catalogue(lang: str, address: str = "sie") -> dict[str, Any]:
    """The messages of a UI language (English for anything unsupported); German in the given form of address."""
    lang = lang if lang in LANGUAGES else "en"
    messages = _read(lang)
    if lang == "de" and address == "du":
        messages.update(_read("de-du"))
    return messages


def configured_address() -> str:
    """The installation's German form of address, ``sie`` or ``du`` (``sie`` outside an application)."""
    if not has_app_context():
        return "sie"
    address = current_config().german_address
    return address if address in ADDRESSES else "sie"


def messages(lang: str) -> dict[str, Any]:
    """The catalogue of a UI language in the configured form of address (what pages and services show)."""
    return catalogue(lang, configured_address())


def language_of(locale: str | None) -> str:
    """A supported UI language for a locale such as ``de-DE`` or ``en_US`` (English otherwise)."""
    lang = (locale or "en").replace("_", "-").split("-")[0].lower()
    return lang if lang in LANGUAGES else "en"


def text(key: str, lang: str, **values: Any) -> str:
    """One message in the configured catalogue of ``lang``, its ``{placeholders}`` filled with ``values``."""
    message = str(messages(lang)[key])
    return message.format(**values) if values else message


def error_text(code: str | None, lang: str, default: str, **values: Any) -> str:
    """The catalogue's ``error_<code>`` message, or ``default`` when the code has none or lacks a value."""
    message = messages(lang).get(f"error_{code}") if code else None
    if not isinstance(message, str):
        return default
    try:
        return message.format(**values)
    except (KeyError, IndexError, ValueError):
        return default


def request_language() -> str:
    """The UI language of the current request: its session's locale, else the browser's Accept-Language."""
    if not has_request_context():
        return "en"
    session = g.get("coursebots_session")
    if session is not None and getattr(session, "locale", None):
        return language_of(session.locale)
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"
