"""Fixtures for the llm tests: a tiny random chat model built locally, its engine and a running model server."""
from __future__ import annotations

import os
from typing import Callable, Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub: everything is built locally
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from course_bots.llm.engine import Engine, EngineOptions  # noqa: E402
from course_bots.llm.server import BackgroundServer, create_app  # noqa: E402
from course_bots.llm.tiny import build_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a tiny random Llama-style chat model with a locally trained tokenizer."""
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-model")))


@pytest.fixture
def make_engine(tiny_model: str) -> Iterator[Callable[..., Engine]]:
    """Build engines on the tiny model with given options; all are shut down after the test."""
    engines: list[Engine] = []

    def factory(**options: object) -> Engine:
        engine = Engine(tiny_model, EngineOptions(**options))  # type: ignore[arg-type]
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.shutdown()


@pytest.fixture(scope="session")
def shared_engine(tiny_model: str) -> Iterator[Engine]:
    """One engine (batch 16) reused by the HTTP tests that do not change its options."""
    engine = Engine(tiny_model, EngineOptions(max_batch=16, max_queue=32))
    yield engine
    engine.shutdown()


@pytest.fixture(scope="session")
def model_server(shared_engine: Engine) -> Iterator[BackgroundServer]:
    """Our model server on 127.0.0.1 (a free port) in front of the shared engine."""
    server = BackgroundServer(create_app(shared_engine, "tiny")).start()
    yield server
    server.stop()


@pytest.fixture
def make_server() -> Iterator[Callable[[Engine], BackgroundServer]]:
    """Start a model server for a given engine; stopped after the test."""
    servers: list[BackgroundServer] = []

    def factory(engine: Engine, **kwargs: object) -> BackgroundServer:
        server = BackgroundServer(create_app(engine, "tiny", **kwargs)).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


class IndependentOpenAIServer:
    """A minimal OpenAI-compatible server written independently of ours (stdlib only), started on 127.0.0.1.

    It answers "Echo: <question>" word by word as SSE, and can fail the first requests with 503 or stall.
    """

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        self.requests = 0
        self.fail_first = 0
        self.hold: threading.Event | None = None  # when set: answers wait until the test releases them
        self.answered = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def _json(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._json(200, {"object": "list", "data": [{"id": "echo", "object": "model", "created": 0,
                                                             "owned_by": "test"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                if outer.requests <= outer.fail_first:
                    self._json(503, {"error": {"message": "overloaded", "code": "overloaded"}})
                    return
                if outer.hold is not None:
                    outer.hold.wait(60)  # bounds the wait only; the test releases it
                outer.answered += 1
                words = ("Echo: " + body["messages"][-1]["content"]).split()
                if not body.get("stream"):
                    self._json(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "echo",
                                     "choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": " ".join(words)}}]})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for i, word in enumerate(words[: body.get("max_tokens") or 100]):
                    delta = {"content": word if i == 0 else " " + word}
                    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "echo",
                             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                last = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "echo",
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def independent_server() -> Iterator[IndependentOpenAIServer]:
    """A second, independent OpenAI-compatible server on 127.0.0.1."""
    server = IndependentOpenAIServer()
    yield server
    server.close()


@pytest.fixture
def dead_url() -> str:
    """An OpenAI base URL where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def transformers_serve(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``transformers serve`` on the tiny model at 127.0.0.1 (needs FastAPI; skipped without it); its base URL."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    pytest.importorskip("fastapi", reason="transformers serve needs FastAPI (transformers[serving])")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path_factory.mktemp("hf-cache"))}
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from transformers.cli.transformers import main; sys.exit(main())",
         "serve", tiny_model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("transformers serve did not start")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(30)
