"""The model catalogue: which models exist, where they run, their limits and which platforms may use them.

One entry type, :class:`ModelEntry`, for the installation's default model and the admin's catalogue file alike,
built only here: :func:`default_entry` from plain configuration values, :func:`entry_from_file` from one
``[[models]]`` item of a TOML or JSON file. Pure data (no Flask, no database); the database and the teacher pages
only store an entry's ``key``.
"""
from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .base import Message
from .tokens import estimate_messages

logger = logging.getLogger(__name__)

KINDS = ("local", "external")
BACKENDS = ("extractive", "openai", "local")
# The fields a catalogue file's ``[[models]]`` item (or its ``[defaults]``) may set.
FILE_FIELDS = frozenset({"key", "label", "kind", "model", "context_window", "base_url", "base_urls", "tokenizer",
                         "max_new_tokens", "timeout_s", "requests_per_minute", "platforms", "api_key_env"})
FILE_MAX_NEW_TOKENS = 512  # a file entry's answer budget when it names none
DEFAULT_MAX_ANSWER_TOKENS = 1024  # the default model's answer budget

EXTRACTIVE_LABEL = "Extractive (no language model)"  # the default entry without a model; pages translate it


class CatalogueError(ValueError):
    """The catalogue file is invalid; the message names the entry and field."""


@dataclass(frozen=True)
class ModelEntry:
    """One model teachers may pick: how to reach it, its limits, and who may use it.

    ``backend`` is ``extractive`` (no model), ``openai`` (an OpenAI-compatible server at ``base_url``) or ``local``
    (a model loaded in-process). ``external`` models send questions out of the institution. The key is either
    ``api_key`` (the default model's, from configuration) or the ``COURSEBOTS_*`` variable ``api_key_env`` names,
    resolved by the caller when it builds the backend; :meth:`public` shows neither, nor the URL.
    """

    key: str
    label: str
    backend: str
    model: str = ""  # the served model name, or a model id/path for the in-process quick-start
    base_url: str = ""  # OpenAI-compatible /v1 URL; empty for extractive or in-process
    base_urls: tuple[str, ...] = ()  # several servers of the same model (GPUs, machines); base_url is the first
    api_key: str = field(default="", repr=False)
    external: bool = False  # answers leave the institution (consent asks again)
    context_window: int = 4096
    max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS
    timeout_s: float = 60.0
    tokenizer: str = ""  # local tokenizer path for exact counting; else a conservative estimate
    requests_per_minute: int | None = None  # per course; None: no limit
    platforms: tuple[str, ...] = ()  # platform issuers allowed to use it; empty: every platform
    api_key_env: str = ""  # name of the environment variable holding the key (never the key itself)

    @property
    def urls(self) -> tuple[str, ...]:
        """Every server of this model: ``base_urls``, else ``base_url`` alone (empty without one)."""
        return self.base_urls or ((self.base_url,) if self.base_url else ())

    @property
    def in_process(self) -> bool:
        """Whether the model is loaded inside the process (quick-start) rather than reached over HTTP."""
        return self.backend == "local"

    @property
    def extractive(self) -> bool:
        """Whether this entry answers by quoting passages (no usable model named)."""
        return self.backend not in ("openai", "local") or not self.model

    def allowed_for(self, platform: str | None) -> bool:
        """Whether teachers of this platform may pick this model."""
        return not self.platforms or "*" in self.platforms or platform in self.platforms

    def public(self) -> dict[str, Any]:
        """What teachers and administrators see of the entry (never the URL or key)."""
        return {"key": self.key, "label": self.label, "external": self.external, "extractive": self.extractive,
                "context_window": self.context_window, "max_answer_tokens": self.max_answer_tokens}

    def token_counter(self) -> Callable[[Sequence[Message]], int]:
        """Exact counting with the configured tokenizer, else the estimate with a safety margin."""
        if self.tokenizer:
            from .tokens import tokenizer_counter

            return tokenizer_counter(self.tokenizer)
        return estimate_messages


def default_entry(*, backend: str = "", model: str = "", base_url: str = "", api_key: str = "",
                  context_window: int = 4096) -> ModelEntry:
    """The installation's default model (key ``""``) from its configured backend, model, URL, key and window.

    ``base_url`` may list several servers of the model, separated by commas.
    """
    urls = tuple(u.strip() for u in base_url.split(",") if u.strip())
    backend = backend or ("openai" if urls else "extractive")
    label = model or (EXTRACTIVE_LABEL if backend == "extractive" else backend)
    return ModelEntry(key="", label=label, backend=backend, model=model, base_url=urls[0] if urls else "",
                      base_urls=urls if len(urls) > 1 else (), api_key=api_key, context_window=context_window)


def entry_from_file(item: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
                    name: str = "") -> ModelEntry:
    """Validate one ``[[models]]`` item of a catalogue file (over its ``[defaults]``) into an entry."""
    values = {**{k: v for k, v in (defaults or {}).items() if k in FILE_FIELDS}, **item}
    name = str(values.get("key") or name or "models[?]")
    if "api_key" in item:
        raise CatalogueError(f"{name}: unknown field api_key: put the key in an environment variable and name it "
                             "in api_key_env")
    unknown = set(item) - FILE_FIELDS
    if unknown:
        raise CatalogueError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
    for required in ("key", "label", "kind", "model", "context_window"):
        if not values.get(required):
            raise CatalogueError(f"{name}: '{required}' is required")
    if values["kind"] not in KINDS:
        raise CatalogueError(f"{name}: kind must be one of {', '.join(KINDS)}")
    if values.get("api_key_env") and not str(values["api_key_env"]).startswith("COURSEBOTS_"):
        raise CatalogueError(f"{name}: api_key_env must name a COURSEBOTS_* environment variable")
    urls = values.get("base_urls") or ()
    if not isinstance(urls, (list, tuple)) or not all(isinstance(u, str) and u.strip() for u in urls):
        raise CatalogueError(f"{name}: base_urls must be a list of URLs")
    urls = tuple(dict.fromkeys(u.strip() for u in urls))
    base_url = str(values.get("base_url") or (urls[0] if urls else ""))
    if base_url and urls and base_url not in urls:
        urls = (base_url, *urls)  # both given: base_url is one more server
    if values["kind"] == "external" and not base_url:
        raise CatalogueError(f"{name}: an external model needs a base_url")
    try:
        rpm = values.get("requests_per_minute")
        entry = ModelEntry(
            key=str(values["key"]), label=str(values["label"]), backend="openai" if base_url else "local",
            model=str(values["model"]), base_url=base_url, base_urls=urls if len(urls) > 1 else (),
            external=values["kind"] == "external", context_window=int(values["context_window"]),
            max_answer_tokens=int(values.get("max_new_tokens", FILE_MAX_NEW_TOKENS)),
            timeout_s=float(values.get("timeout_s", 60.0)), tokenizer=str(values.get("tokenizer") or ""),
            requests_per_minute=None if rpm is None else int(rpm),
            platforms=tuple(str(p) for p in values.get("platforms", ())),
            api_key_env=str(values.get("api_key_env") or ""))
    except (TypeError, ValueError) as exc:
        raise CatalogueError(f"{name}: {exc}") from exc
    if entry.max_answer_tokens >= entry.context_window:
        raise CatalogueError(f"{name}: max_new_tokens must be smaller than context_window")
    return entry


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
    entries: list[ModelEntry] = []
    for index, item in enumerate(data.get("models", [])):
        entry = entry_from_file(item, defaults, name=f"models[{index}]")
        if any(e.key == entry.key for e in entries):
            raise CatalogueError(f"{entry.key}: duplicate key")
        entries.append(entry)
    logger.info("Model catalogue with %d entries", len(entries))
    return Catalogue(tuple(entries))
