"""In-process backend on our engine: the quick-start mode, and what the model server itself wraps."""
from __future__ import annotations

import logging
import queue
import uuid
from typing import Iterator, Sequence

from .base import (BackendError, DoneEvent, ErrorEvent, Event, GenerationParams, Health, Message)
from .engine import Engine, EngineOptions

logger = logging.getLogger(__name__)


class LocalBackend:
    """Streams completions from a model loaded in this process (continuous batching across threads)."""

    name = "local"

    def __init__(self, model: str, options: EngineOptions | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or Engine(model, options)
        self.model_id = model

    def stream(self, messages: Sequence[Message], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        """Yield the completion's events; closing the iterator early cancels the request."""
        events: queue.Queue[Event] = queue.Queue()
        rid = request_id or uuid.uuid4().hex
        try:
            self.engine.submit(messages, params, events.put, rid)
        except BackendError as exc:
            yield exc.to_event()
            return
        finished = False
        try:
            while True:
                try:
                    # The engine enforces the deadline itself; this wait only guards against a stalled engine.
                    event = events.get(timeout=params.timeout_s + 30)
                except queue.Empty:
                    yield ErrorEvent("timeout", "The model did not answer in time.")
                    return
                yield event
                if isinstance(event, (DoneEvent, ErrorEvent)):
                    finished = True
                    return
        finally:
            if not finished:
                self.engine.cancel(rid)

    def cancel(self, request_id: str) -> None:
        """Stop a running completion."""
        self.engine.cancel(request_id)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Exact prompt tokens with the model's tokenizer."""
        return self.engine.count_tokens(messages)

    def health(self) -> Health:
        """Engine state and load."""
        return self.engine.health()

    def close(self) -> None:
        """Stop the engine and free the model."""
        self.engine.shutdown()
