"""Which backend answers a bot: built from configuration and the admin's model catalogue, cached per process.

No model configured -> extractive answers. An OpenAI-compatible base URL -> that server (ours, vLLM, Ollama, a
gateway) with the extractive fallback. ``local`` -> a model loaded inside this web process (quick start).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass
from typing import Any

from course_bots.llm.base import ChatBackend
from course_bots.llm.catalogue import Catalogue, CatalogueError, load_catalogue
from course_bots.llm.cli_support import build_backend
from course_bots.llm.extractive import FallbackBackend
from lti_tool.config import Config, named_secret
from lti_tool.extensions import current_config

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, str, str], ChatBackend] = {}
_catalogues: dict[str, tuple[int, Catalogue]] = {}  # path -> (mtime, parsed file)
_lock = threading.Lock()


@dataclass(frozen=True)
class ModelEntry:
    """One model the admin offers: how to reach it and its limits."""

    key: str
    label: str
    backend: str  # "extractive" | "openai" | "local"
    model: str = ""
    base_url: str = ""
    api_key: str = ""
    external: bool = False  # answers leave the institution (consent asks again)
    context_window: int = 4096
    max_answer_tokens: int = 1024
    timeout_s: float = 60.0
    tokenizer: str = ""  # local tokenizer path for exact token counts

    def public(self) -> dict[str, Any]:
        """What teachers see of the entry (never the URL or key)."""
        extractive = self.backend not in ("openai", "local") or not self.model
        return {"key": self.key, "label": self.label, "external": self.external, "extractive": extractive,
                "context_window": self.context_window, "max_answer_tokens": self.max_answer_tokens}


def default_entry(config: Config) -> ModelEntry:
    """The installation's default model from the ``COURSEBOTS_LLM_*`` settings."""
    backend = config.llm_backend or ("openai" if config.llm_base_url else "extractive")
    label = config.llm_model or ("Extractive (no language model)" if backend == "extractive" else backend)
    return ModelEntry(key="", label=label, backend=backend, model=config.llm_model, base_url=config.llm_base_url,
                      api_key=config.llm_api_key, context_window=config.llm_context_window)


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
    return tuple(ModelEntry(key=e.key, label=e.label, backend="openai" if e.base_url else "local", model=e.model,
                            base_url=e.base_url or "", external=e.kind == "external",
                            api_key=(named_secret(e.api_key_env) or "") if e.api_key_env else "",
                            context_window=e.context_window, max_answer_tokens=e.max_new_tokens,
                            timeout_s=e.timeout_s, tokenizer=e.tokenizer or "")
                 for e in loaded.allowed_for(issuer))


def _load_catalogue(path: str) -> Catalogue:
    """The parsed catalogue file, re-read only when it changes (every question and consent check asks)."""
    stamp = os.stat(path).st_mtime_ns
    with _lock:
        cached = _catalogues.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    loaded = load_catalogue(path)
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
    """A (cached) backend for a catalogue entry."""
    cache_key = (entry.backend, entry.base_url, entry.model)
    with _lock:
        backend = _cache.get(cache_key)
        if backend is None:
            backend = _build(entry)
            _cache[cache_key] = backend
    return backend


def _build(entry: ModelEntry) -> ChatBackend:
    """Construct the backend an entry describes (extractive when it names nothing usable)."""
    if entry.backend == "openai" and entry.base_url and entry.model:
        return build_backend("openai", entry.model, entry.base_url, entry.api_key or None, fallback=True,
                             timeout_s=entry.timeout_s, tokenizer=entry.tokenizer or None)
    if entry.backend == "local" and entry.model:
        logger.info("Loading an in-process model for quick-start answers")
        return FallbackBackend(build_backend("local", entry.model, max_context=entry.context_window))
    if entry.backend not in ("extractive", ""):
        logger.warning("Model entry %r is incomplete; answering extractively", entry.key)
    return build_backend("extractive")


def model_state() -> dict[str, Any]:
    """What ``/readyz`` reports of the default model: cheap, never loads or calls anything."""
    entry = default_entry(current_config())
    state: dict[str, Any] = {"backend": entry.backend or "extractive", "model": entry.model or None}
    with _lock:
        backend = _cache.get((entry.backend, entry.base_url, entry.model))
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
