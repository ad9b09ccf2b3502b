"""Which backend answers a bot: built from configuration and the admin's model catalogue, cached per process.

No model configured -> extractive answers. An OpenAI-compatible base URL -> that server (ours, vLLM, Ollama, a
gateway) with the extractive fallback. ``local`` -> a model loaded inside this web process (quick start).
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from course_bots.llm.base import ChatBackend
from course_bots.llm.extractive import ExtractiveBackend, FallbackBackend
from lti_tool.config import Config

logger = logging.getLogger(__name__)

_cache: dict[tuple[str, str, str], ChatBackend] = {}
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

    The value is the path of a TOML/JSON catalogue file in the format of :mod:`course_bots.llm.catalogue`
    (``[[models]]`` with key, label, kind, model, context_window, base_url, platforms ...), or an inline JSON
    list of entries (key, label, backend, base_url, model, external, context_window, max_answer_tokens).
    """
    raw = (config.model_catalogue or "").strip()
    if not raw:
        return ()
    if not raw.startswith("["):
        return _from_file(raw, issuer)
    try:
        items = json.loads(raw)
    except ValueError:
        logger.error("The model catalogue could not be read; only the default model is offered")
        return ()
    entries = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("key"):
            entries.append(ModelEntry(
                key=str(item["key"]), label=str(item.get("label") or item["key"]),
                backend=str(item.get("backend", "openai")), model=str(item.get("model", "")),
                base_url=str(item.get("base_url", "")), api_key=str(item.get("api_key", "")),
                external=bool(item.get("external", False)), context_window=int(item.get("context_window", 4096)),
                max_answer_tokens=int(item.get("max_answer_tokens", 1024))))
    return tuple(entries)


def _from_file(path: str, issuer: str | None) -> tuple[ModelEntry, ...]:
    """Entries of a catalogue file read by the llm package's loader."""
    from course_bots.llm.catalogue import CatalogueError, load_catalogue

    try:
        loaded = load_catalogue(path)
    except (OSError, CatalogueError) as exc:
        logger.error("The model catalogue could not be read (%s); only the default model is offered",
                     type(exc).__name__)
        return ()
    return tuple(ModelEntry(key=e.key, label=e.label, backend="openai" if e.base_url else "local", model=e.model,
                            base_url=e.base_url or "", external=e.kind == "external",
                            context_window=e.context_window, max_answer_tokens=e.max_new_tokens)
                 for e in loaded.allowed_for(issuer))


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
        from course_bots.llm.openai_backend import OpenAIBackend

        return FallbackBackend(OpenAIBackend(entry.base_url, entry.model, entry.api_key or None))
    if entry.backend == "local" and entry.model:
        from course_bots.llm.local import LocalBackend

        logger.info("Loading an in-process model for quick-start answers")
        return FallbackBackend(LocalBackend(entry.model))
    if entry.backend not in ("extractive", ""):
        logger.warning("Model entry %r is incomplete; answering extractively", entry.key)
    return ExtractiveBackend()


def forget_backends() -> None:
    """Drop cached backends (tests; after a catalogue change)."""
    with _lock:
        _cache.clear()


def external_model_name(bot_id: int) -> str | None:
    """The model's label when the bot's answers come from outside the institution (consent asks again)."""
    from course_bots.services.bot_settings import get_settings
    from lti_tool.extensions import current_config

    config = current_config()
    entry = entry_for(config, get_settings(bot_id).model_key)
    return entry.label if entry.external else None
