"""Our model server: an OpenAI-compatible HTTP API (Starlette + uvicorn) in front of one continuous-batching engine.

Endpoints: ``POST /v1/chat/completions`` (SSE streaming or one JSON answer), ``GET /v1/models``, ``GET /health``,
``GET /metrics`` (Prometheus; needs the API key when one is set).
Beyond the OpenAI format, stream chunks may carry ``coursebots_status`` (queued with position, warming up), a full
queue answers 429 at once with ``{"error": {"code": "busy", "position": N}}``, and a request may send
``ignore_eos`` (benchmarks).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict
from typing import Any, AsyncIterator

from .base import (BackendError, DoneEvent, ErrorEvent, Event, GenerationParams, StatusEvent, TokenEvent)
from . import telemetry
from .engine import Engine, EngineOptions

logger = logging.getLogger(__name__)

# Each error code's HTTP status: a client (and the OpenAI SDK) tells a wrong key (401) from a full queue (429), a
# server that cannot answer now (503) and one that took too long (504); an unknown code is the server's fault (500).
_HTTP_STATUS = {"unauthorised": 401, "bad_request": 400, "busy": 429, "timeout": 504, "unavailable": 503,
                "internal": 500}
_OPENAI_FINISH = {"stop": "stop", "length": "length", "timeout": "length", "cancelled": "stop"}


def create_app(engine: Engine, model_name: str, *, max_new_tokens_cap: int = 4096, max_timeout_s: float = 300.0,
               api_key: str | None = None) -> Any:
    """The Starlette application serving ``engine`` under the OpenAI-compatible routes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def error(code: str, message: str, position: int | None = None) -> Response:
        """The JSON error shape with the HTTP status of its code."""
        body: dict[str, Any] = {"code": code, "message": message, "type": code}
        headers = {"WWW-Authenticate": 'Bearer realm="coursebots"'} if code == "unauthorised" else {}
        if position is not None:
            body["position"] = position
            headers["Retry-After"] = "2"
        return JSONResponse({"error": body}, status_code=_HTTP_STATUS.get(code, 500), headers=headers)

    def authorised(request: Request) -> bool:
        """Whether the request carries the API key (when one is configured)."""
        return api_key is None or request.headers.get("authorization", "") == f"Bearer {api_key}"

    async def health(request: Request) -> Response:
        """State and load of the engine."""
        state = engine.health()
        return JSONResponse({"status": "ok" if state.ok else "stopping", "model": model_name, **asdict(state)})

    async def models(request: Request) -> Response:
        """The one model this server serves."""
        if not authorised(request):
            return error("unauthorised", "A valid API key is required.")
        return JSONResponse({"object": "list", "data": [
            {"id": model_name, "object": "model", "created": 0, "owned_by": "coursebots"}]})

    async def chat(request: Request) -> Response:
        """OpenAI chat completion, streamed as SSE or answered as one JSON object."""
        if not authorised(request):
            return error("unauthorised", "A valid API key is required.")
        try:
            body = await request.json()
            messages = [{"role": str(m["role"]), "content": _content_text(m.get("content"))}
                        for m in body["messages"]]
            params = _params(body, max_new_tokens_cap, max_timeout_s)
        except (ValueError, KeyError, TypeError) as exc:
            return error("bad_request", f"Invalid request: {exc}")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        submitted, waiting = time.monotonic(), [True]

        def sink(event: Event) -> None:
            """Hand an event from the engine thread over to this request's event loop."""
            if waiting[0] and isinstance(event, TokenEvent):
                waiting[0] = False
                telemetry.MODEL_WAIT.observe(time.monotonic() - submitted)
            loop.call_soon_threadsafe(events.put_nowait, event)

        try:
            # Submitting is quick (tokenise + enqueue); a full queue raises Busy right here, before any stream.
            engine.submit(messages, params, sink, rid)
        except BackendError as exc:
            ev = exc.to_event()
            return error(ev.code, ev.message, ev.position)
        if body.get("stream"):
            return StreamingResponse(_sse(engine, rid, model_name, events), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await _complete(engine, rid, model_name, events, error)

    async def metrics(request: Request) -> Response:
        """Prometheus metrics of the model server: queue depth and waits, loads, GPU memory (API key when set)."""
        if not authorised(request):
            return error("unauthorised", "A valid API key is required.")
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(telemetry.exposition(engine), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/health", health), Route("/metrics", metrics), Route("/v1/models", models),
              Route("/v1/chat/completions", chat, methods=["POST"])]
    return Starlette(routes=routes)


def _content_text(content: Any) -> str:
    """Message content as text (OpenAI allows a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _params(body: dict[str, Any], cap: int, max_timeout: float) -> GenerationParams:
    """Generation parameters from an OpenAI request body, clamped to the server's limits."""
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)
    wanted = body.get("max_completion_tokens") or body.get("max_tokens") or cap
    return GenerationParams(
        max_new_tokens=max(1, min(int(wanted), cap)),
        temperature=float(body.get("temperature", 0.0) or 0.0),
        top_p=float(body.get("top_p", 1.0) or 1.0),
        stop=stop,
        timeout_s=min(float(body.get("timeout", max_timeout)), max_timeout),
        ignore_eos=bool(body.get("ignore_eos", False)),
        seed=body.get("seed"),
    )


def _chunk(rid: str, model: str, delta: dict[str, Any], finish: str | None = None,
           **extra: Any) -> str:
    """One SSE line holding an OpenAI ``chat.completion.chunk``."""
    payload = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _sse(engine: Engine, rid: str, model: str, events: asyncio.Queue[Event]) -> AsyncIterator[str]:
    """Stream engine events as OpenAI SSE; a client that disconnects cancels its request."""
    finished = False
    try:
        yield _chunk(rid, model, {"role": "assistant", "content": ""})
        while True:
            event = await events.get()
            if isinstance(event, TokenEvent):
                yield _chunk(rid, model, {"content": event.text})
            elif isinstance(event, StatusEvent):
                yield _chunk(rid, model, {}, coursebots_status={"state": event.state, "position": event.position})
            elif isinstance(event, DoneEvent):
                finished = True
                usage = {"prompt_tokens": event.usage.prompt_tokens,
                         "completion_tokens": event.usage.completion_tokens,
                         "total_tokens": event.usage.total_tokens}
                yield _chunk(rid, model, {}, _OPENAI_FINISH.get(event.finish_reason, "stop"), usage=usage,
                             coursebots_finish_reason=event.finish_reason)
                yield "data: [DONE]\n\n"
                return
            elif isinstance(event, ErrorEvent):
                finished = True
                yield f"data: {json.dumps({'error': {'code': event.code, 'message': event.message}})}\n\n"
                return
    finally:
        if not finished:
            engine.cancel(rid)


async def _complete(engine: Engine, rid: str, model: str, events: asyncio.Queue[Event], error: Any) -> Any:
    """Collect a whole completion into one OpenAI ``chat.completion`` JSON answer."""
    from starlette.responses import JSONResponse

    parts: list[str] = []
    try:
        while True:
            event = await events.get()
            if isinstance(event, TokenEvent):
                parts.append(event.text)
            elif isinstance(event, ErrorEvent):
                return error(event.code, event.message, event.position)
            elif isinstance(event, DoneEvent):
                break
    except asyncio.CancelledError:
        engine.cancel(rid)
        raise
    usage = {"prompt_tokens": event.usage.prompt_tokens, "completion_tokens": event.usage.completion_tokens,
             "total_tokens": event.usage.total_tokens}
    return JSONResponse({"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)},
                                      "finish_reason": _OPENAI_FINISH.get(event.finish_reason, "stop")}],
                         "usage": usage, "coursebots_finish_reason": event.finish_reason})


def _engine_options(opts: dict[str, Any]) -> EngineOptions:
    """EngineOptions from keyword options, ignoring the server-only ones."""
    fields = EngineOptions.__dataclass_fields__
    return EngineOptions(**{k: v for k, v in opts.items() if k in fields and v is not None})


def serve(model: str, host: str = "127.0.0.1", port: int = 8001, **opts: Any) -> None:
    """Load ``model`` (id or local path) and serve it until interrupted (the ``llm serve`` command).

    Options: ``max_batch``, ``max_queue``, ``idle_unload_s``, ``device``, ``max_context``, ``max_batch_tokens``,
    ``served_model_name``, ``max_new_tokens_cap``, ``max_timeout_s``, ``api_key`` (clients must send it as a
    bearer token).
    """
    import sys

    import uvicorn

    # The engine thread holds the GIL while it launches a step's kernels; switching threads more often keeps the
    # HTTP side (busy answers, new streams) responsive. This process serves nothing else.
    sys.setswitchinterval(0.001)
    engine = Engine(model, _engine_options(opts))
    name = opts.get("served_model_name") or os.path.basename(model.rstrip("/")) or model
    app = create_app(engine, name, max_new_tokens_cap=opts.get("max_new_tokens_cap") or 4096,
                     max_timeout_s=opts.get("max_timeout_s") or 300.0,
                     api_key=opts.get("api_key") or None)
    logger.info("Serving model %s on http://%s:%d/v1", name, host, port)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        engine.shutdown()


class BackgroundServer:
    """Runs an ASGI app with uvicorn in a daemon thread (tests, benchmarks, quick-start)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
        self.host, self.port = host, port
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, name="llm-http", daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``http://host:port/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 20.0) -> "BackgroundServer":
        """Start serving and wait until the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("The HTTP server did not start.")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(10)
