"""Continuous-batching scheduler for one local model: a bounded queue, one shared decode step, idle unload.

One thread owns the model. Every loop it admits waiting requests into the running batch (prefill), then runs one
forward step for *all* active sequences, streams each one's new text to its sink, and lets finished sequences leave,
so new requests join between steps. Why not transformers' ``ContinuousBatchingManager``: see docs/LLM.md.
"""
from __future__ import annotations

import collections
import gc
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .base import (BackendError, Busy, DoneEvent, Event, GenerationParams, Health, Message, StatusEvent, TokenEvent,
                   Usage)
from .runtime import KVBatch, LoadedModel, TextStream, encode_chat, load_model, load_tokenizer, sample

logger = logging.getLogger(__name__)
Sink = Callable[[Event], None]


@dataclass(frozen=True)
class EngineOptions:
    """Capacity and lifecycle settings of the model server."""

    max_batch: int = 32  # sequences decoded together in one step
    max_queue: int = 64  # waiting requests beyond the batch; one more gets "busy"
    idle_unload_s: float | None = None  # unload the weights after this long without requests (None: never)
    device: str | None = None
    max_context: int | None = None  # cap on prompt + answer tokens (default: the model's window)
    max_prefill_tokens: int = 8192  # padded prompt tokens admitted per step, so a burst cannot stall decoding
    max_batch_tokens: int | None = None  # KV positions reserved by running requests (prompt + answer limit)
    load_on_start: bool = True
    load_retry_s: float = 5.0  # after a failed load, requests are refused at once this long (doubling per failure)
    load_retry_max_s: float = 300.0


@dataclass
class _Request:
    """One completion inside the engine."""

    rid: str
    prompt: list[int]
    params: GenerationParams
    sink: Sink
    deadline: float
    text: TextStream
    generator: Any = None
    cancelled: bool = False
    position: int = 0  # last queue position reported to the client
    generated: int = 0
    next_token: int = -1
    done: bool = field(default=False)


class Engine:
    """Owns one model and serves many concurrent streams with continuous batching."""

    def __init__(self, model: str, options: EngineOptions | None = None, *, tokenizer: Any = None,
                 loader: Callable[[], LoadedModel] | None = None) -> None:
        self.model_id = model
        self.options = options or EngineOptions()
        # Kept while unloaded: counting tokens needs no weights.
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model)
        # Benchmarks inject a loader that builds random weights in place instead of reading them from disk.
        self._loader = loader or (lambda: load_model(self.model_id, self.tokenizer, self.options.device,
                                                     self.options.max_context))
        self.step_batch_sizes: collections.deque[int] = collections.deque(maxlen=100_000)  # rows per decode step
        self.loads = 0
        self._loaded: LoadedModel | None = None
        self._warming = False
        self._load_failures = 0
        self._retry_at = 0.0  # monotonic time before which no new load is tried (after a failed one)
        self._waiting: collections.deque[_Request] = collections.deque()
        self._active: list[_Request] = []
        self._batch: KVBatch | None = None
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._stop = False
        self._last_activity = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="llm-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ called from any thread

    def submit(self, messages: Sequence[Message], params: GenerationParams, sink: Sink,
               request_id: str | None = None) -> str:
        """Queue a completion whose events go to ``sink``; raises ``Busy`` when the queue is full."""
        prompt = encode_chat(self.tokenizer, messages)
        return self.submit_ids(prompt, params, sink, request_id)

    def submit_ids(self, prompt: list[int], params: GenerationParams, sink: Sink,
                   request_id: str | None = None) -> str:
        """Queue a completion of already tokenised prompt ids."""
        window = self.options.max_context or 1 << 30
        if not prompt or len(prompt) >= window:
            raise BackendError(f"The prompt has {len(prompt)} tokens; the limit is {window - 1}.", code="bad_request")
        with self._cond:
            if self._stop:
                raise BackendError("The model server is shutting down.", code="unavailable")
            if self._loaded is None and time.monotonic() < self._retry_at:
                raise BackendError(self._load_failed_message(), code="unavailable")
            if len(self._waiting) >= self.options.max_queue:
                raise Busy(len(self._waiting) + 1)
            rid = request_id or f"req-{next(self._ids)}"
            request = _Request(rid, prompt, params, sink, time.monotonic() + params.timeout_s,
                               TextStream(self.tokenizer, tuple(params.stop)))
            self._waiting.append(request)
            self._last_activity = time.monotonic()
            self._cond.notify_all()
        if self._loaded is None:
            sink(StatusEvent("warming_up"))
        return rid

    def cancel(self, request_id: str) -> None:
        """Stop a queued or running completion; its sink gets ``DoneEvent("cancelled")``."""
        with self._cond:
            for request in itertools.chain(self._waiting, self._active):
                if request.rid == request_id:
                    request.cancelled = True
            self._cond.notify_all()

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of these messages with the model's own tokenizer and chat template."""
        return len(encode_chat(self.tokenizer, messages))

    def health(self) -> Health:
        """Loaded/warming state and load."""
        with self._cond:
            return Health(ok=not self._stop, loaded=self._loaded is not None, warming_up=self._warming,
                          queue_length=len(self._waiting), active=len(self._active))

    def wait_ready(self, timeout: float = 600.0) -> bool:
        """Block until the weights are loaded (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._loaded is not None:
                return True
            time.sleep(0.05)
        return False

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the loop, fail what is still queued, release the model."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ engine thread only

    def _run(self) -> None:
        """The scheduler loop."""
        if self.options.load_on_start:
            self._load()
        while True:
            with self._cond:
                if self._stop:
                    break
                self._drop_cancelled_waiting()
                if not self._waiting and not self._active:
                    self._maybe_unload()
                    self._cond.wait(timeout=0.5)
                    continue
            try:
                if self._loaded is None:
                    if time.monotonic() < self._retry_at:
                        self._refuse_waiting()
                    else:
                        self._load()
                    continue
                self._admit()
                with self._cond:
                    self._report_positions()
                if self._active:
                    self._decode_step()
                # Hand the GIL over between steps: the HTTP event loop shares this process, and a busy answer
                # or a new request's queue position must not wait for many steps.
                time.sleep(0)
            except Exception as exc:  # a failed step (e.g. out of memory) must not kill the server
                logger.exception("Generation step failed; failing %d active requests", len(self._active))
                self._fail_active(BackendError(f"Generation failed: {type(exc).__name__}"))
        self._fail_all()
        self._unload()

    def _load(self) -> None:
        """Load the weights (the queue keeps filling meanwhile and every waiter hears "warming up")."""
        with self._cond:
            self._warming = True
        started = time.monotonic()
        try:
            loaded = self._loader()
        except Exception:
            self._load_failures += 1
            delay = min(self.options.load_retry_s * 2 ** (self._load_failures - 1), self.options.load_retry_max_s)
            logger.exception("Loading the model failed (%d in a row); next attempt in %.0f s",
                             self._load_failures, delay)
            with self._cond:
                self._warming = False
                self._retry_at = time.monotonic() + delay
            self._refuse_waiting()
            return
        with self._cond:
            self._load_failures, self._retry_at = 0, 0.0
            self._loaded, self._warming = loaded, False
            self._batch = KVBatch(loaded.model)
            self.loads += 1
            self._last_activity = time.monotonic()
            # The window is only known once the config is read: adopt it as the admission limit.
            self.options = _with_context(self.options, loaded.max_context)
        logger.info("Model ready after %.1f s (load #%d)", time.monotonic() - started, self.loads)

    def _refuse_waiting(self) -> None:
        """After a failed load, answer every waiting request at once instead of loading again for each."""
        with self._cond:
            waiting, self._waiting = list(self._waiting), collections.deque()
            message = self._load_failed_message()
        for request in waiting:
            _emit(request, BackendError(message, code="unavailable").to_event())

    def _load_failed_message(self) -> str:
        """What a refused request is told while loading is paused."""
        seconds = max(0.0, self._retry_at - time.monotonic())
        return f"The model could not be loaded; the next attempt is in {seconds:.0f} s."

    def _maybe_unload(self) -> None:
        """Scale to zero after the idle time (called with the lock held and nothing to do)."""
        idle = self.options.idle_unload_s
        if idle is not None and self._loaded is not None and time.monotonic() - self._last_activity >= idle:
            logger.info("Unloading the model after %.0f s idle", idle)
            self._unload()

    def _unload(self) -> None:
        """Release weights and cached GPU memory."""
        if self._loaded is None:
            return
        self._loaded, self._batch = None, None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is present whenever a model was loaded
            pass

    def _drop_cancelled_waiting(self) -> None:
        """Answer cancelled or expired queued requests (lock held)."""
        now = time.monotonic()
        keep: collections.deque[_Request] = collections.deque()
        for request in self._waiting:
            if request.cancelled:
                _emit(request, DoneEvent("cancelled", Usage(len(request.prompt), 0)))
            elif now > request.deadline:
                _emit(request, BackendError("The request waited too long in the queue.", code="timeout").to_event())
            else:
                keep.append(request)
        self._waiting = keep

    def _report_positions(self) -> None:
        """Tell each request still waiting its place in line when it changed (lock held)."""
        for position, request in enumerate(self._waiting, start=1):
            if position != request.position:
                request.position = position
                _emit(request, StatusEvent("queued", position))

    def _admit(self) -> None:
        """Move waiting requests into the batch (one batched prefill) while slots and prefill budget allow."""
        assert self._loaded is not None and self._batch is not None
        with self._cond:
            room = self.options.max_batch - len(self._active)
            chosen: list[_Request] = []
            width = 0
            reserved = sum(self._reservation(r) for r in self._active)
            while self._waiting and len(chosen) < room:
                candidate = self._waiting[0]
                new_width = max(width, len(candidate.prompt))
                if chosen and new_width * (len(chosen) + 1) > self.options.max_prefill_tokens:
                    break
                # Without a KV budget a burst of long prompts could exhaust GPU memory and fail every stream;
                # a request is always admitted into an empty batch so that it cannot wait forever.
                budget = self.options.max_batch_tokens
                if budget is not None and (self._active or chosen) and \
                        reserved + self._reservation(candidate) > budget:
                    break
                reserved += self._reservation(candidate)
                chosen.append(self._waiting.popleft())
                width = new_width
            self._last_activity = time.monotonic()
        if not chosen:
            return
        import torch

        pad = self._loaded.tokenizer.pad_token_id
        try:
            with torch.inference_mode():
                logits = self._batch.prefill([r.prompt for r in chosen], pad if pad is not None else 0)
        except Exception as exc:  # e.g. out of memory on long prompts: the running batch is untouched
            logger.exception("Prefill of %d requests failed", len(chosen))
            for request in chosen:
                _emit(request, BackendError(f"Generation failed: {type(exc).__name__}").to_event())
            return
        for request in chosen:
            if request.params.seed is not None:
                request.generator = torch.Generator(device=self._loaded.device).manual_seed(request.params.seed)
        self._active.extend(chosen)
        self._advance(chosen, logits)

    def _reservation(self, request: _Request) -> int:
        """KV positions a request may need: its prompt plus its answer limit."""
        window = self.options.max_context or 1 << 30
        return min(window, len(request.prompt) + request.params.max_new_tokens)

    def _decode_step(self) -> None:
        """One forward step for every active sequence (the continuous batch)."""
        import torch

        assert self._loaded is not None and self._batch is not None
        tokens = torch.tensor([r.next_token for r in self._active], dtype=torch.long, device=self._loaded.device)
        self.step_batch_sizes.append(len(self._active))
        with torch.inference_mode():
            logits = self._batch.decode(tokens)
        self._advance(list(self._active), logits)

    def _advance(self, requests: list[_Request], logits: Any) -> None:
        """Sample, stream and finish the given rows; then shrink the batch to the unfinished ones."""
        picked = sample(logits, [r.params.temperature for r in requests], [r.params.top_p for r in requests],
                        [r.generator for r in requests])
        now = time.monotonic()
        for request, token in zip(requests, picked):
            request.next_token = token
            request.generated += 1
            reason = self._finish_reason(request, token, now)
            if reason != "stop":  # an end-of-sequence token has no text
                piece, hit_stop = request.text.push(token)
                if piece:
                    _emit(request, TokenEvent(piece))
                if hit_stop:
                    reason = "stop"
            if reason is not None:
                tail = request.text.flush()  # text held back for a stop string that never completed
                if tail:
                    _emit(request, TokenEvent(tail))
                request.done = True
                _emit(request, DoneEvent(reason, Usage(len(request.prompt), request.generated)))
        # Batch rows are in the order of self._active (prefill appends new rows at the end, as extend does).
        if any(r.done for r in self._active):
            keep = [i for i, r in enumerate(self._active) if not r.done]
            assert self._batch is not None
            self._batch.keep(keep)
            self._active = [self._active[i] for i in keep]

    def _finish_reason(self, request: _Request, token: int, now: float) -> str | None:
        """Why this sequence ends after ``token``, or None to go on."""
        assert self._loaded is not None
        if request.cancelled:
            return "cancelled"
        if token in self._loaded.eos_ids and not request.params.ignore_eos:
            return "stop"
        limit = min(request.params.max_new_tokens, self._loaded.max_context - len(request.prompt))
        if request.generated >= limit:
            return "length"
        if now > request.deadline:
            return "timeout"
        return None

    def _fail_active(self, error: BackendError) -> None:
        """Answer every running request with an error and start a fresh batch."""
        for request in self._active:
            _emit(request, error.to_event())
        self._active = []
        if self._loaded is not None:
            self._batch = KVBatch(self._loaded.model)

    def _fail_all(self) -> None:
        """On shutdown: answer everything still running or queued."""
        self._fail_active(BackendError("The model server stopped.", code="unavailable"))
        with self._cond:
            waiting, self._waiting = list(self._waiting), collections.deque()
        for request in waiting:
            _emit(request, BackendError("The model server stopped.", code="unavailable").to_event())


def _emit(request: _Request, event: Event) -> None:
    """Deliver an event; a sink that fails (its client is gone) cancels only its own request."""
    try:
        request.sink(event)
    except Exception:  # one broken consumer must not fail the whole batch
        logger.warning("Event sink of request %s failed; cancelling it", request.rid, exc_info=True)
        request.cancelled = True


def _with_context(options: EngineOptions, window: int) -> EngineOptions:
    """Options with ``max_context`` set to the loaded model's window."""
    from dataclasses import replace

    return replace(options, max_context=window)
