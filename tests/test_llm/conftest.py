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

