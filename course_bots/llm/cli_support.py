"""What the ``llm serve`` / ``llm chat`` commands call: build a backend by name, stream a completion to a terminal.

The Flask CLI (``flask --app lti_tool llm ...``) and ``python -m course_bots.llm`` both wire to these functions.
"""
from __future__ import annotations

import logging
from typing import Any, TextIO

from .base import (ChatBackend, DoneEvent, ErrorEvent, GenerationParams, Passage, StatusEvent, TokenEvent)
from .catalogue import ModelEntry
from .circuit import CircuitBreaker

logger = logging.getLogger(__name__)

BACKEND_KINDS = ("local", "openai", "extractive")


def build_backend(kind: str, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                  **opts: Any) -> ChatBackend:
    """A backend by kind: ``local`` (model id/path), ``openai`` (base URL + model name) or ``extractive``.

    Options for ``local``: the ``EngineOptions`` fields (``max_batch``, ``max_queue``, ``idle_unload_s``,
    ``device``, ``max_context``). For ``openai``: ``timeout_s``, ``retries``, ``tokenizer`` (a local tokenizer
    path for exact counting), ``circuit_threshold``, ``circuit_cooldown_s``, ``fallback`` (answer extractively
    when the server is down).
    """
    if kind == "local":
        if not model:
            raise ValueError("--model is required for the local backend")
        from .engine import EngineOptions
        from .local import LocalBackend

        fields = EngineOptions.__dataclass_fields__
        return LocalBackend(model, EngineOptions(**{k: v for k, v in opts.items() if k in fields and v is not None}))
    if kind == "openai":
        if not base_url or not model:
            raise ValueError("--base-url and --model are required for the openai backend")
        from .openai_backend import OpenAIBackend
        from .tokens import tokenizer_counter

        backend: ChatBackend = OpenAIBackend(
            base_url, model, api_key,
            timeout_s=float(opts.get("timeout_s") or 60.0), retries=int(opts.get("retries", 2)),
            breaker=CircuitBreaker(int(opts.get("circuit_threshold") or 3),
                                   float(opts.get("circuit_cooldown_s") or 30.0)),
            token_counter=tokenizer_counter(opts["tokenizer"]) if opts.get("tokenizer") else None,
            send_extensions=bool(opts.get("send_extensions", False)))
        if opts.get("fallback"):
            from .extractive import FallbackBackend

            backend = FallbackBackend(backend)
        return backend
    if kind == "extractive":
        from .extractive import ExtractiveBackend

        return ExtractiveBackend()
    raise ValueError(f"Unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}")


def stream_to(backend: ChatBackend, prompt: str, out: TextIO, *, system: str | None = None,
              max_new_tokens: int = 256, temperature: float = 0.0, timeout_s: float = 120.0,
              sources: tuple[Passage, ...] = (), err: TextIO | None = None) -> int:
    """Stream one completion of ``prompt`` to ``out`` as it is generated; return a process exit code (0 ok)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature, timeout_s=timeout_s,
                              sources=sources)
    notes = err or out
    for event in backend.stream(messages, params):
        if isinstance(event, TokenEvent):
            out.write(event.text)
            out.flush()
        elif isinstance(event, StatusEvent):
            where = f" (number {event.position} in line)" if event.position else ""
            notes.write(f"[{event.state.replace('_', ' ')}{where}]\n")
            notes.flush()
        elif isinstance(event, DoneEvent):
            out.write("\n")
            notes.write(f"[{event.finish_reason}: {event.usage.prompt_tokens} prompt + "
                        f"{event.usage.completion_tokens} answer tokens]\n")
            return 0
        elif isinstance(event, ErrorEvent):
            out.write("\n")
            notes.write(f"[error {event.code}: {event.message}]\n")
            return 1
    return 1


def backend_for_entry(entry: ModelEntry, fallback: bool = True, api_key: str | None = None) -> ChatBackend:
    """The backend a catalogue entry describes (extractive when it names nothing usable).

    ``fallback`` answers extractively while the model is unavailable; ``api_key`` overrides the entry's own key
    (the caller resolves the variable its ``api_key_env`` names).
    """
    backend: ChatBackend
    if entry.backend == "openai" and entry.base_url and entry.model:
        return build_backend("openai", entry.model, ",".join(entry.urls), api_key or entry.api_key or None,
                             timeout_s=entry.timeout_s, tokenizer=entry.tokenizer or None, fallback=fallback)
    if entry.backend == "local" and entry.model:
        logger.info("Loading an in-process model for quick-start answers")
        backend = build_backend("local", entry.model, max_context=entry.context_window)
        if fallback:
            from .extractive import FallbackBackend

            backend = FallbackBackend(backend)
        return backend
    if entry.backend not in ("extractive", ""):
        logger.warning("Model entry %r is incomplete; answering extractively", entry.key)
    return build_backend("extractive")
