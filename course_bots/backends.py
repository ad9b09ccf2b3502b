"""Which backend answers a bot: built from configuration and the admin's model catalogue, cached per process.

No model configured -> extractive answers. An OpenAI-compatible base URL -> that server (ours, vLLM, Ollama, a
gateway) with the extractive fallback. ``local`` -> a model loaded inside this web process (quick start).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, replace
from typing import Any

from course_bots.llm import catalogue as catalogue_file
from course_bots.llm.base import ChatBackend
from course_bots.llm.catalogue import Catalogue, CatalogueError, ModelEntry
from course_bots.llm.cli_support import backend_for_entry
from lti_tool.config import Config, named_secret
from lti_tool.extensions import current_config

__all__ = ["ModelEntry", "backend_for", "catalogue", "catalogue_rows", "default_entry", "entry_for",
           "forget_backends", "model_state"]

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, str, str], ChatBackend] = {}
_catalogues: dict[str, tuple[int, Catalogue]] = {}  # path -> (mtime, parsed file)
_lock = threading.Lock()


def default_entry(config: Config) -> ModelEntry:
    """The installation's default model from the ``COURSEBOTS_LLM_*`` settings."""
    return catalogue_file.default_entry(backend=config.llm_backend, model=config.llm_model,
                                        base_url=config.llm_base_url, api_key=config.llm_api_key,
                                        context_window=config.llm_context_window)


def catalogue(config: Config, issuer: str | None = None) -> tuple[ModelEntry, ...]:
    """The admin's model catalogue (``COURSEBOTS_MODEL_CATALOGUE``), only entries allowed for ``issuer`` if given.

    The file is read and validated by :mod:`course_bots.llm.catalogue`; an unreadable catalogue leaves only the
    default model (logged, never fatal: teachers keep answering).
    """
    path = (config.model_catalogue or "").strip()
    if not path:
        return ()
    try:
        loaded = _load_catalogue(path)
    except (OSError, CatalogueError) as exc:
        logger.error("The model catalogue could not be read (%s); only the default model is offered",
                     type(exc).__name__)
        return ()
    return tuple(loaded.allowed_for(issuer))


def _load_catalogue(path: str) -> Catalogue:
    """The parsed catalogue file, re-read only when it changes (every question and consent check asks)."""
    stamp = os.stat(path).st_mtime_ns
    with _lock:
        cached = _catalogues.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    loaded = catalogue_file.load_catalogue(path)
    with _lock:
        _catalogues[path] = (stamp, loaded)
    return loaded


def catalogue_rows(config: Config, issuer: str | None) -> list[dict[str, Any]]:
    """The default model and the catalogue entries allowed for ``issuer`` — public fields only, never URLs or keys."""
    rows = [{**default_entry(config).public(), "default": True}]
    rows += [{**entry.public(), "default": False} for entry in catalogue(config, issuer)]
    return rows


def entry_for(config: Config, key: str) -> ModelEntry:
    """The catalogue entry with this key, or the default when the key is empty or no longer offered."""
    for entry in catalogue(config):
        if entry.key == key:
            return entry
    return default_entry(config)


def backend_for(entry: ModelEntry) -> ChatBackend:
    """A (cached) backend for a catalogue entry, with the extractive fallback."""
    cache_key = (entry.backend, ",".join(entry.urls), entry.model)
    with _lock:
        backend = _cache.get(cache_key)
        if backend is None:
            backend = backend_for_entry(_with_key(entry))
            _cache[cache_key] = backend
    return backend


def warm_backends(config: Config) -> int:
    """Build the backends of the models served over HTTP (default and catalogue) now, not on a first question.

    Building one imports the OpenAI client library and sets up its connection pools (~0.8 s on a 2-core machine,
    which the first student of every worker would otherwise wait); nothing is sent. A model loaded into this
    process (``local``) is left to its first question: loading weights is the model server's job.
    """
    built = 0
    for entry in (default_entry(config), *catalogue(config)):
        if entry.backend == "openai" and entry.model and entry.urls:
            backend_for(entry)
            built += 1
    return built


def _with_key(entry: ModelEntry) -> ModelEntry:
    """The entry carrying the API key its ``api_key_env`` names (read only when a backend is built)."""
    if entry.api_key or not entry.api_key_env:
        return entry
    return replace(entry, api_key=named_secret(entry.api_key_env) or "")


def model_state() -> dict[str, Any]:
    """What ``/readyz`` reports of the default model: cheap, never loads or calls anything."""
    entry = default_entry(current_config())
    state: dict[str, Any] = {"backend": entry.backend or "extractive", "model": entry.model or None}
    with _lock:
        backend = _cache.get((entry.backend, ",".join(entry.urls), entry.model))
    if backend is None:
        state["state"] = "ready" if entry.backend in ("extractive", "") else "not_started"
        return state
    health = backend.health()
    state.update(asdict(health))
    state["state"] = ("warming_up" if health.warming_up else "ready" if health.ok else "unavailable")
    return state


def forget_backends() -> None:
    """Drop cached backends (tests; after a catalogue change)."""
    with _lock:
        _cache.clear()
        _catalogues.clear()
