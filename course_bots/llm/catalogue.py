"""The admin's model catalogue: which models exist, where they run, their limits and which platforms may use them.

Pure data and a loader (TOML or JSON); the database and the teacher pages only store an entry's ``key``.
"""
from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .base import Message
from .tokens import estimate_messages

logger = logging.getLogger(__name__)

KINDS = ("local", "external")


class CatalogueError(ValueError):
    """The catalogue file is invalid; the message names the entry and field."""


@dataclass(frozen=True)
class ModelEntry:
    """One model an admin offers: ``local`` runs on the institution's hardware, ``external`` leaves it."""

    key: str
    label: str
    kind: str
    model: str  # the served model name, or a model id/path for the in-process quick-start
    context_window: int
    base_url: str | None = None  # OpenAI-compatible /v1 URL; None for a local model run in-process
    tokenizer: str | None = None  # local tokenizer path for exact counting; else a conservative estimate
    max_new_tokens: int = 512
    timeout_s: float = 60.0
    requests_per_minute: int | None = None  # per course; None: no limit
    platforms: tuple[str, ...] = ()  # platform issuers allowed to use it; empty: every platform
    api_key_env: str | None = None  # name of the environment variable holding the key (never the key itself)

    @property
    def in_process(self) -> bool:
        """Whether the model is loaded inside the web process (quick-start) rather than reached over HTTP."""
        return self.base_url is None

    def allowed_for(self, platform: str | None) -> bool:
        """Whether teachers of this platform may pick this model."""
        return not self.platforms or "*" in self.platforms or platform in self.platforms

    def token_counter(self) -> Callable[[Sequence[Message]], int]:
        """Exact counting with the configured tokenizer, else the estimate with a safety margin."""
        if self.tokenizer:
            from .tokens import tokenizer_counter

            return tokenizer_counter(self.tokenizer)
        return estimate_messages


@dataclass(frozen=True)
class Catalogue:
    """All entries, in file order; the first is the default."""

    entries: tuple[ModelEntry, ...]

    def get(self, key: str) -> ModelEntry:
        """The entry with this key (KeyError when there is none)."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        raise KeyError(key)

    def allowed_for(self, platform: str | None) -> list[ModelEntry]:
        """The entries teachers of ``platform`` may choose (all when ``platform`` is None)."""
        return [e for e in self.entries if platform is None or e.allowed_for(platform)]

    @property
    def default(self) -> ModelEntry | None:
        """The first entry, or None for an empty catalogue (the extractive answerer then serves)."""
        return self.entries[0] if self.entries else None


def load_catalogue(path: str | Path) -> Catalogue:
    """Read a catalogue from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"{path.name}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}")
    return parse_catalogue(data)


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    """Validate a catalogue mapping: ``{"defaults": {...}, "models": [{...}, ...]}``."""
    defaults = dict(data.get("defaults", {}))
    known = {f.name for f in fields(ModelEntry)}
    entries: list[ModelEntry] = []
    for index, item in enumerate(data.get("models", [])):
        values = {**{k: v for k, v in defaults.items() if k in known}, **item}
        name = values.get("key") or f"models[{index}]"
        unknown = set(item) - known
        if unknown:
            raise CatalogueError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
        for required in ("key", "label", "kind", "model", "context_window"):
            if not values.get(required):
                raise CatalogueError(f"{name}: '{required}' is required")
        if values["kind"] not in KINDS:
            raise CatalogueError(f"{name}: kind must be one of {', '.join(KINDS)}")
        if values.get("api_key_env") and not str(values["api_key_env"]).startswith("COURSEBOTS_"):
            raise CatalogueError(f"{name}: api_key_env must name a COURSEBOTS_* environment variable")
        if values["kind"] == "external" and not values.get("base_url"):
            raise CatalogueError(f"{name}: an external model needs a base_url")
        if "api_key" in item:
            raise CatalogueError(f"{name}: put the key in an environment variable and name it in api_key_env")
        try:
            entry = ModelEntry(**{**values, "platforms": tuple(values.get("platforms", ())),
                                  "context_window": int(values["context_window"]),
                                  "max_new_tokens": int(values.get("max_new_tokens", 512)),
                                  "timeout_s": float(values.get("timeout_s", 60.0))})
        except (TypeError, ValueError) as exc:
            raise CatalogueError(f"{name}: {exc}") from exc
        if entry.max_new_tokens >= entry.context_window:
            raise CatalogueError(f"{name}: max_new_tokens must be smaller than context_window")
        if any(e.key == entry.key for e in entries):
            raise CatalogueError(f"{name}: duplicate key")
        entries.append(entry)
    logger.info("Model catalogue with %d entries", len(entries))
    return Catalogue(tuple(entries))
