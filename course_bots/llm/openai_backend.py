"""Backend for any OpenAI-compatible server: ours, vLLM, Ollama, TGI or an institution's gateway."""
from __future__ import annotations

import functools
import itertools
import json
import logging
import threading
import time
import uuid
from typing import Any, Callable, Iterator, Sequence

from .base import (DoneEvent, ErrorEvent, Event, GenerationParams, Health, Message, StatusEvent, TokenEvent, Usage)
from .circuit import CircuitBreaker
from .tokens import estimate_messages

logger = logging.getLogger(__name__)


UNREACHABLE = "The language model server cannot be reached."  # what a student reads for a failed server


class StreamCut(Exception):
    """The server's stream ended without a finish reason (the server died mid-answer): not a complete answer."""


class _Server:
    """One OpenAI-compatible server of a backend: its client, circuit and requests in flight from this process."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float, breaker: CircuitBreaker) -> None:
        import openai

        self.base_url, self.breaker, self.in_flight = base_url, breaker, 0
        self.refused = False  # it refused our API key last time (shown by health until it accepts it again)
        # Retries are ours (the client's own would also retry a "busy" 429 and hide the queue position).
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=0,
                                    timeout=timeout_s)


def split_urls(base_url: str | Sequence[str]) -> list[str]:
    """The server URLs of a ``base_url`` setting: a list, or one string with comma-separated URLs."""
    items = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    return [u.strip() for u in items if u and u.strip()]


class OpenAIBackend:
    """Streams from OpenAI-compatible ``/v1/chat/completions`` servers with retries, circuit breakers and timeouts.

    With several servers (one model on several GPUs or machines) each request goes to the server with the fewest
    requests in flight from this process whose circuit lets it through; a server that cannot be reached before
    the first token is skipped for the next one at once (its own circuit opens after repeated failures), and a
    full ("busy") server hands the request to another. Queue positions are the chosen server's own.
    """

    name = "openai"

    def __init__(self, base_url: str | Sequence[str], model: str, api_key: str | None = None, *,
                 timeout_s: float = 60.0, connect_timeout_s: float = 5.0, retries: int = 2, backoff_s: float = 0.5,
                 breaker: CircuitBreaker | None = None,
                 token_counter: Callable[[Sequence[Message]], int] | None = None,
                 send_extensions: bool = False) -> None:
        urls = split_urls(base_url)
        if not urls:
            raise ValueError("an OpenAI-compatible backend needs at least one base URL")
        self.base_url, self.model = urls[0], model
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self.breaker = breaker or CircuitBreaker()  # the first server's; each further one gets a copy's settings
        self.servers = [_Server(url, api_key, timeout_s, self.breaker if i == 0 else
                                CircuitBreaker(self.breaker.threshold, self.breaker.cooldown_s))
                        for i, url in enumerate(urls)]
        self._client = self.servers[0].client
        self._count = token_counter or estimate_messages
        self._send_extensions = send_extensions  # our server understands ignore_eos; others may reject it
        self._open: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._turn = 0  # rotates among equally loaded servers

    def _pick(self, skip: Sequence[_Server]) -> _Server | None:
        """The least busy server not in ``skip`` whose circuit lets a call through now (counted as in flight)."""
        with self._lock:
            self._turn += 1
            n = len(self.servers)
            order = sorted(range(n), key=lambda i: (self.servers[i].in_flight, (i - self._turn) % n))
            for i in order:
                server = self.servers[i]
                if server not in skip and server.breaker.allow():
                    server.in_flight += 1
                    return server
        return None

    def stream(self, messages: Sequence[Message], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        """Yield events; transient failures before the first token go to another server or are retried."""
        import openai

        rid = request_id or uuid.uuid4().hex
        deadline = time.monotonic() + params.timeout_s
        attempt, tried, refused = 0, list[_Server](), list[_Server]()  # refused: the key is wrong there, no retry
        busy: ErrorEvent | None = None
        failure: ErrorEvent | None = None
        while True:
            server = self._pick(tried + refused)
            if server is None and failure is not None and tried and attempt < self.retries \
                    and time.monotonic() < deadline:  # the others' circuits are open: retry the failed ones
                time.sleep(min(self.backoff_s * 2 ** attempt, max(0.0, deadline - time.monotonic())))
                attempt, tried = attempt + 1, []
                continue
            if server is None:
                yield busy or failure or ErrorEvent("unavailable",
                                                    "The language model server is unavailable (circuit open).")
                return
            tried.append(server)
            produced = verdict = False
            try:
                for event in self._attempt(rid, messages, params, deadline, server):
                    if not produced and isinstance(event, TokenEvent):
                        produced = True
                    elif not verdict and isinstance(event, DoneEvent):
                        server.breaker.success()  # before the reader sees it: many stop reading at "done"
                        verdict = True
                    yield event
                if not verdict:
                    server.breaker.success()
                    verdict = True
                return
            except openai.RateLimitError as exc:
                position = _busy_position(exc)
                if position is not None:
                    server.breaker.success()  # a full queue is a live server
                    verdict = True
                    if busy is None or position < (busy.position or 0):
                        busy = ErrorEvent("busy", _error_message(exc), position)
                    continue  # another server may have room; else the smallest position is reported
                failure = ErrorEvent("unavailable", "The language model server is rate limiting requests.")
            except openai.APITimeoutError:
                server.breaker.failure()
                verdict = True
                yield ErrorEvent("timeout", "The language model server did not answer in time.")
                return
            except (openai.APIConnectionError, openai.InternalServerError, StreamCut) as exc:
                server.breaker.failure()
                verdict = True
                logger.warning("OpenAI-compatible server %s failed (attempt %d): %s", server.base_url, attempt + 1,
                               type(exc).__name__)
                failure = ErrorEvent("unavailable", UNREACHABLE)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                # A wrong or missing API key: the server is unusable for this tool until an admin fixes the key.
                # The student sees the usual message (or the fallback's answer); the admin reads the log.
                server.breaker.failure()
                verdict = True
                refused.append(server)
                server.refused = True
                logger.warning("OpenAI-compatible server %s refused this tool's credentials (HTTP %d): check the "
                               "API key configured for it", server.base_url, exc.status_code)
                failure = ErrorEvent("unavailable", UNREACHABLE)
            except openai.APIStatusError as exc:
                yield ErrorEvent("bad_request", _error_message(exc))
                return
            except openai.APIError as exc:  # an error event inside the stream
                yield ErrorEvent("internal", _error_message(exc))
                return
            finally:
                with self._lock:
                    self._open.pop(rid, None)
                    server.in_flight -= 1
                if not verdict:  # closed by the reader, a bad request: a half-open trial may run again
                    server.breaker.abandon()
            if produced or time.monotonic() >= deadline:
                yield failure
                return
            if len(tried) < len(self.servers):
                continue  # fail over to another server at once (or, their circuits open, retry above)
            if attempt >= self.retries or len(refused) == len(self.servers):
                yield failure
                return
            time.sleep(min(self.backoff_s * 2 ** attempt, max(0.0, deadline - time.monotonic())))
            attempt, tried = attempt + 1, []

    def _attempt(self, rid: str, messages: Sequence[Message], params: GenerationParams,
                 deadline: float, server: _Server | None = None) -> Iterator[Event]:
        """One streaming request; raises the client's errors."""
        import httpx

        remaining = max(0.1, deadline - time.monotonic())
        extra: dict[str, Any] = {"ignore_eos": True} if params.ignore_eos and self._send_extensions else {}
        kwargs: dict[str, Any] = {"temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.seed is not None:
            kwargs["seed"] = params.seed
        # typed as Any: the overloads only know OpenAI's own model names and message types
        server = server or self.servers[0]
        client: Any = server.client
        # The SDK builds the request (auth, timeouts, status errors); the stream is read raw: one json.loads per
        # chunk instead of the SDK's SSE decoder and pydantic chunk objects (the web worker's CPU per token).
        with client.chat.completions.with_streaming_response.create(
                model=self.model, messages=[dict(m) for m in messages], stream=True,
                max_tokens=params.max_new_tokens, stream_options={"include_usage": True}, extra_body=extra or None,
                timeout=httpx.Timeout(min(self.timeout_s, remaining), connect=self.connect_timeout_s),
                **kwargs) as raw:
            response = raw.http_response
            server.refused = False  # the key was accepted
            with self._lock:
                self._open[rid] = response
            try:
                yield from _read_stream(response, deadline)
            finally:
                response.close()

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
        """The circuits' view of the servers (no network call): ok while any one may be called."""
        states = [server.breaker.state for server in self.servers]
        shown = [state + (" (credentials refused)" if server.refused else "")
                 for state, server in zip(states, self.servers)]
        detail = "circuit " + ", ".join(shown)
        return Health(ok=any(s != "open" for s in states), loaded=any(s == "closed" for s in states),
                      active=sum(server.in_flight for server in self.servers), detail=detail)

    def close(self) -> None:
        """Close the pooled HTTP connections (the CLI after one completion; tests)."""
        for server in self.servers:
            server.client.close()


def _read_stream(response: Any, deadline: float) -> Iterator[Event]:
    """The events of a raw ``chat.completions`` SSE stream (an httpx response), as the SDK's stream would give.

    Handles ``[DONE]``, our ``coursebots_status``/``coursebots_finish_reason`` extensions, usage, error payloads
    (``openai.APIError``) and transport errors (``APITimeoutError``/``APIConnectionError``); a stream that ends
    without a finish reason raises :class:`StreamCut`.
    """
    import openai

    finish, usage, generated, finished = "stop", Usage(), 0, False
    monotonic, loads, token = time.monotonic, json.loads, TokenEvent
    data: list[str] = []
    try:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data:"):  # one JSON chunk per line, the common case: handled when its event ends
                data.append(line[6:] if line.startswith("data: ") else line[5:])
                continue
            if line or not data:  # another field (event:, id:, a comment), or a blank line with no data
                continue
            payload = data[0] if len(data) == 1 else "\n".join(data)
            data = []
            if payload.startswith("[DONE]"):
                # Read on to the end of the body (nothing more is sent): a response read to its end returns its
                # connection to the pool, one closed early costs a new connection for the next question.
                for _rest in itertools.islice(lines, 8):
                    pass
                break
            if monotonic() > deadline:
                yield DoneEvent("timeout", Usage(usage.prompt_tokens, generated))
                return
            chunk = loads(payload)
            if not isinstance(chunk, dict):
                continue
            if chunk.get("error"):
                error = chunk["error"]
                message = error.get("message") if isinstance(error, dict) else None
                raise openai.APIError(message if isinstance(message, str) and message
                                      else "An error occurred during streaming", response.request, body=error)
            status = chunk.get("coursebots_status")
            if status:
                yield StatusEvent(str(status.get("state")), status.get("position"))
            counts = chunk.get("usage")
            if counts is not None:
                usage = Usage(counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0)
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta")
                if delta and delta.get("content"):
                    generated += 1
                    yield token(delta["content"])
                if choice.get("finish_reason"):
                    finished = True
                    finish = str(chunk.get("coursebots_finish_reason") or choice["finish_reason"])
    except _timeout_errors() as exc:
        raise openai.APITimeoutError(request=response.request) from exc
    except _transport_errors() as exc:
        raise openai.APIConnectionError(request=response.request) from exc
    if not finished:  # a server killed mid-answer may close the stream cleanly: the answer is cut, not done
        raise StreamCut("the stream ended without a finish reason")
    yield DoneEvent(finish, usage if usage.completion_tokens else Usage(usage.prompt_tokens, generated))


@functools.cache
def _timeout_errors() -> tuple[type[BaseException], ...]:
    """The HTTP clients' timeout errors (the SDK talks httpx2 from openai 3 on, httpx before)."""
    import httpx

    errors: list[type[BaseException]] = [httpx.TimeoutException]
    try:
        import httpx2
    except ImportError:
        pass
    else:
        errors.append(httpx2.TimeoutException)
    return tuple(errors)


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP clients' errors of a broken connection (as the SDK's stream maps them to APIConnectionError)."""
    import ssl

    import httpx

    errors: list[type[BaseException]] = [httpx.RequestError, ssl.SSLError]
    try:
        import httpx2
    except ImportError:
        pass
    else:
        errors.append(httpx2.RequestError)
    return tuple(errors)


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
