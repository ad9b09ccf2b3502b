"""Backend for any OpenAI-compatible server: ours, vLLM, Ollama, TGI or an institution's gateway."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any, Callable, Iterator, Sequence

from .base import (DoneEvent, ErrorEvent, Event, GenerationParams, Health, Message, StatusEvent, TokenEvent, Usage)
from .circuit import CircuitBreaker
from .tokens import estimate_messages

logger = logging.getLogger(__name__)


class OpenAIBackend:
    """Streams from an OpenAI-compatible ``/v1/chat/completions`` with retries, a circuit breaker and timeouts."""

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout_s: float = 60.0,
                 connect_timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5,
                 breaker: CircuitBreaker | None = None,
                 token_counter: Callable[[Sequence[Message]], int] | None = None,
                 send_extensions: bool = False) -> None:
        import openai

        self.base_url, self.model = base_url, model
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self.breaker = breaker or CircuitBreaker()
        self._count = token_counter or estimate_messages
        self._send_extensions = send_extensions  # our server understands ignore_eos; others may reject it
        # Retries are ours (the client's own would also retry a "busy" 429 and hide the queue position).
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=0,
                                     timeout=timeout_s)
        self._open: dict[str, Any] = {}
        self._lock = threading.Lock()

    def stream(self, messages: Sequence[Message], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        """Yield events; transient failures before the first token are retried with exponential backoff."""
        import openai

        rid = request_id or uuid.uuid4().hex
        deadline = time.monotonic() + params.timeout_s
        for attempt in range(self.retries + 1):
            if not self.breaker.allow():
                yield ErrorEvent("unavailable", "The language model server is unavailable (circuit open).")
                return
            produced = False
            try:
                for event in self._attempt(rid, messages, params, deadline):
                    produced = produced or isinstance(event, TokenEvent)
                    yield event
                self.breaker.success()
                return
            except openai.RateLimitError as exc:
                busy = _busy_position(exc)
                if busy is not None:
                    self.breaker.success()  # a full queue is a live server
                    yield ErrorEvent("busy", _error_message(exc), busy)
                    return
                failure = ErrorEvent("unavailable", "The language model server is rate limiting requests.")
            except openai.APITimeoutError:
                self.breaker.failure()
                yield ErrorEvent("timeout", "The language model server did not answer in time.")
                return
            except (openai.APIConnectionError, openai.InternalServerError) as exc:
                self.breaker.failure()
                logger.warning("OpenAI-compatible server %s failed (attempt %d): %s", self.base_url, attempt + 1,
                               type(exc).__name__)
                failure = ErrorEvent("unavailable", "The language model server cannot be reached.")
            except openai.APIStatusError as exc:
                yield ErrorEvent("bad_request", _error_message(exc))
                return
            except openai.APIError as exc:  # an error event inside the stream
                yield ErrorEvent("internal", _error_message(exc))
                return
            finally:
                with self._lock:
                    self._open.pop(rid, None)
            if produced or attempt == self.retries or time.monotonic() >= deadline:
                yield failure
                return
            time.sleep(min(self.backoff_s * 2 ** attempt, max(0.0, deadline - time.monotonic())))

    def _attempt(self, rid: str, messages: Sequence[Message], params: GenerationParams,
                 deadline: float) -> Iterator[Event]:
        """One streaming request; raises the client's errors."""
        import httpx

        remaining = max(0.1, deadline - time.monotonic())
        extra: dict[str, Any] = {"ignore_eos": True} if params.ignore_eos and self._send_extensions else {}
        kwargs: dict[str, Any] = {"temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.seed is not None:
            kwargs["seed"] = params.seed
        client: Any = self._client  # the typed overloads only know OpenAI's own model names and message types
        response = client.chat.completions.create(
            model=self.model, messages=[dict(m) for m in messages], stream=True,
            max_tokens=params.max_new_tokens, stream_options={"include_usage": True}, extra_body=extra or None,
            timeout=httpx.Timeout(min(self.timeout_s, remaining), connect=self.connect_timeout_s), **kwargs)
        with self._lock:
            self._open[rid] = response
        finish, usage, generated = "stop", Usage(), 0
        try:
            for chunk in response:
                if time.monotonic() > deadline:
                    yield DoneEvent("timeout", Usage(usage.prompt_tokens, generated))
                    return
                status = (chunk.model_extra or {}).get("coursebots_status")
                if status:
                    yield StatusEvent(str(status.get("state")), status.get("position"))
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        generated += 1
                        yield TokenEvent(choice.delta.content)
                    if choice.finish_reason:
                        finish = str((chunk.model_extra or {}).get("coursebots_finish_reason")
                                     or choice.finish_reason)
        finally:
            response.close()
        yield DoneEvent(finish, usage if usage.completion_tokens else Usage(usage.prompt_tokens, generated))

    def cancel(self, request_id: str) -> None:
        """Close a running stream (the server sees the disconnect and stops generating)."""
        with self._lock:
            response = self._open.pop(request_id, None)
        if response is not None:
            response.close()

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens by the configured tokenizer, else a conservative estimate."""
        return self._count(messages)

    def health(self) -> Health:
        """The circuit's view of the server (no network call)."""
        state = self.breaker.state
        return Health(ok=state != "open", loaded=state == "closed", detail=f"circuit {state}")

    def close(self) -> None:
        """Close the pooled HTTP connections (the CLI after one completion; tests)."""
        self._client.close()


def _busy_position(exc: Any) -> int | None:
    """The queue position of our server's "busy" answer, or None for an ordinary rate limit."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") == "busy":
        return int(error.get("position") or 0)
    return None


def _error_message(exc: Any) -> str:
    """The server's error message without the client's decoration."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(getattr(exc, "message", exc))
