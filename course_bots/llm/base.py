"""The backend protocol every answer source implements, with its events, parameters and typed errors.

A backend streams *events*, never raises for an expected failure: the chat service maps the four event kinds
one to one onto the API's stream events ``token``, ``status``, ``done`` and ``error``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Protocol, Sequence, Union, runtime_checkable

Message = Mapping[str, str]
"""One chat message: ``{"role": "system"|"user"|"assistant", "content": "..."}``."""


@dataclass(frozen=True)
class Passage:
    """A numbered source passage handed to a backend (the extractive backend quotes these)."""

    number: int
    label: str  # e.g. "Lecture 3.pdf, page 4"
    text: str


@dataclass(frozen=True)
class GenerationParams:
    """Limits and sampling settings of one completion; the limits always hold."""

    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    timeout_s: float = 120.0  # wall clock from submission to the last token
    ignore_eos: bool = False  # benchmarks force a fixed output length with this
    seed: int | None = None
    language: str | None = None  # "de"/"en": the language of fixed texts (extractive answers, notices)
    sources: tuple[Passage, ...] = ()  # the numbered passages of the prompt, for backends that quote them


@dataclass(frozen=True)
class Usage:
    """Token counts of one completion."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TokenEvent:
    """A piece of answer text, in order."""

    text: str


@dataclass(frozen=True)
class StatusEvent:
    """The request waits: ``state`` is ``"queued"`` (with its 1-based ``position``) or ``"warming_up"``."""

    state: str
    position: int | None = None


@dataclass(frozen=True)
class DoneEvent:
    """The completion ended: ``finish_reason`` is ``stop``, ``length``, ``timeout`` or ``cancelled``."""

    finish_reason: str
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class ErrorEvent:
    """The completion failed: ``code`` is ``busy``, ``unavailable``, ``timeout``, ``bad_request`` or ``internal``."""

    code: str
    message: str
    position: int | None = None  # queue position for ``busy``

    def as_exception(self) -> "BackendError":
        """The typed error this event stands for."""
        if self.code == "busy":
            return Busy(self.position or 0, self.message)
        if self.code == "timeout":
            return Timeout(self.message)
        if self.code == "unavailable":
            return Unavailable(self.message)
        return BackendError(self.message, code=self.code)


Event = Union[TokenEvent, StatusEvent, DoneEvent, ErrorEvent]


class BackendError(Exception):
    """A backend could not produce a completion."""

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def to_event(self) -> ErrorEvent:
        """The stream event that reports this error."""
        return ErrorEvent(self.code, str(self))


class Busy(BackendError):
    """The queue is full: the request was not accepted; ``position`` is the place it would have had."""

    code = "busy"

    def __init__(self, position: int, message: str | None = None) -> None:
        super().__init__(message or f"The model is busy, you are number {position} in line. Please retry shortly.")
        self.position = position

    def to_event(self) -> ErrorEvent:
        """The stream event that reports this error, with the queue position."""
        return ErrorEvent(self.code, str(self), self.position)


class Unavailable(BackendError):
    """The backend cannot be reached or is not configured (a circuit breaker may be open)."""

    code = "unavailable"


class Timeout(BackendError):
    """The backend did not answer within the time limit."""

    code = "timeout"


@dataclass(frozen=True)
class Health:
    """Load and state of a backend, as ``/health`` and readiness checks report it."""

    ok: bool
    loaded: bool = False
    warming_up: bool = False
    queue_length: int = 0
    active: int = 0
    detail: str = ""


@runtime_checkable
class ChatBackend(Protocol):
    """Streams a chat completion; implementations: local model, OpenAI-compatible server, extractive."""

    name: str

    def stream(self, messages: Sequence[Message], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        """Yield events for one completion; the last event is a ``DoneEvent`` or an ``ErrorEvent``."""
        ...

    def cancel(self, request_id: str) -> None:
        """Stop a running completion (closing the stream iterator does the same)."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Number of prompt tokens these messages take (an upper estimate where no tokenizer is known)."""
        ...

    def health(self) -> Health:
        """Current state and load."""
        ...


@dataclass(frozen=True)
class Completion:
    """A finished completion collected from a stream."""

    text: str
    finish_reason: str
    usage: Usage
    statuses: tuple[StatusEvent, ...] = ()


def collect(events: Iterable[Event]) -> Completion:
    """Join a stream into one completion; raises the typed error when the stream ends with an error."""
    parts: list[str] = []
    statuses: list[StatusEvent] = []
    for event in events:
        if isinstance(event, TokenEvent):
            parts.append(event.text)
        elif isinstance(event, StatusEvent):
            statuses.append(event)
        elif isinstance(event, ErrorEvent):
            raise event.as_exception()
        elif isinstance(event, DoneEvent):
            return Completion("".join(parts), event.finish_reason, event.usage, tuple(statuses))
    raise BackendError("The stream ended without a final event.")
