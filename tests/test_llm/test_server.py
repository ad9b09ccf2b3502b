"""Our model server over real HTTP on 127.0.0.1: OpenAI format, streaming, concurrency, busy, disconnect, unload."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

import httpx
import openai
import pytest

from course_bots.llm.engine import Engine
from course_bots.llm.server import BackgroundServer

ASK: Any = [{"role": "user", "content": "Wann ist die Klausur?"}]


def client(server: BackgroundServer) -> Any:
    """An OpenAI client for the server, without client-side retries."""
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=30)


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """Parsed ``data:`` payloads of an SSE response (without ``[DONE]``)."""
    out = []
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


def test_models_and_health(model_server: BackgroundServer) -> None:
    assert [m.id for m in client(model_server).models.list()] == ["tiny"]
    health = httpx.get(f"http://{model_server.host}:{model_server.port}/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny" and "queue_length" in health


def test_non_streaming_completion(model_server: BackgroundServer) -> None:
    answer = client(model_server).chat.completions.create(model="tiny", messages=ASK, max_tokens=7,
                                                          extra_body={"ignore_eos": True})
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens == 7
    assert answer.choices[0].message.content


def test_streaming_matches_non_streaming(model_server: BackgroundServer) -> None:
    api = client(model_server)
    whole = api.chat.completions.create(model="tiny", messages=ASK, max_tokens=10, extra_body={"ignore_eos": True})
    pieces, usage, finish = [], None, None
    for chunk in api.chat.completions.create(model="tiny", messages=ASK, max_tokens=10, stream=True,
                                             extra_body={"ignore_eos": True}):
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert len([p for p in pieces if p]) >= 2, "tokens arrive in several chunks"
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "length" and usage is not None and usage.completion_tokens == 10


def test_concurrent_streams_are_batched(model_server: BackgroundServer, shared_engine: Engine) -> None:
    api = client(model_server)
    before = len(shared_engine.step_batch_sizes)
    results: dict[int, str] = {}
    start = threading.Barrier(8)

    def ask(i: int) -> None:
        start.wait()  # send together, so the requests overlap even on a busy machine
        stream = api.chat.completions.create(model="tiny", messages=[{"role": "user", "content": f"Frage {i}"}],
                                             max_tokens=100, stream=True, extra_body={"ignore_eos": True})
        results[i] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == list(range(8)) and all(results.values())
    assert max(list(shared_engine.step_batch_sizes)[before:]) >= 4


def test_full_queue_answers_429_with_position(make_engine: Callable[..., Engine],
                                              make_server: Callable[..., BackgroundServer],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(max_batch=1, max_queue=1)
    server = make_server(engine)
    base = f"http://{server.host}:{server.port}/v1/chat/completions"
    body = {"model": "tiny", "messages": ASK, "max_tokens": 1800, "ignore_eos": True, "stream": True}
    # Decoding stops at a gate we shut once the running answer has streamed its first word: it can then neither go
    # on nor finish and the queued one cannot start, so a 429 proves busy waits for neither. While shut, the engine
    # thread still tells waiting requests their place in line (as its loop does between steps).
    gate = threading.Event()
    gate.set()
    decode_step = engine._decode_step

    def gated_step() -> None:
        while not gate.wait(0.01):
            with engine._cond:
                engine._report_positions()
        decode_step()

    monkeypatch.setattr(engine, "_decode_step", gated_step)
    try:
        with httpx.Client(timeout=30) as http:
            with http.stream("POST", base, json=body) as running:
                lines = running.iter_lines()
                next(line for line in lines if '"content": "' in line and '"content": ""' not in line)
                gate.clear()
                with http.stream("POST", base, json=body) as queued:
                    first = next(line for line in queued.iter_lines() if "coursebots_status" in line)
                    assert json.loads(first[6:])["coursebots_status"] == {"state": "queued", "position": 1}
                    busy = http.post(base, json=body)
                    load = engine.health()
                    assert (load.active, load.queue_length) == (1, 1), "busy came first: the queued one still waits"
                    assert busy.status_code == 429 and busy.headers["Retry-After"]
                    assert busy.json()["error"]["code"] == "busy" and busy.json()["error"]["position"] == 2
                    assert "number 2" in busy.json()["error"]["message"]
                    gate.set()
    finally:
        gate.set()


def test_client_disconnect_cancels_generation(make_engine: Callable[..., Engine],
                                              make_server: Callable[..., BackgroundServer]) -> None:
    engine = make_engine()
    server = make_server(engine)
    body = {"model": "tiny", "messages": ASK, "max_tokens": 1900, "ignore_eos": True, "stream": True}
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
            next(line for line in response.iter_lines() if '"content": "' in line and '"content": ""' not in line)
            assert engine.health().active == 1
    deadline = time.monotonic() + 10
    while engine.health().active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.health().active == 0, "closing the connection stopped the generation"


def test_idle_unload_then_warming_up_status(make_engine: Callable[..., Engine],
                                            make_server: Callable[..., BackgroundServer]) -> None:
    engine = make_engine(idle_unload_s=0.3)
    server = make_server(engine)
    health_url = f"http://{server.host}:{server.port}/health"
    assert engine.wait_ready(30)
    deadline = time.monotonic() + 10
    while httpx.get(health_url).json()["loaded"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert httpx.get(health_url).json()["loaded"] is False
    body = {"model": "tiny", "messages": ASK, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=30) as response:
        events = sse_events(response)
    statuses = [e["coursebots_status"] for e in events if "coursebots_status" in e]
    assert statuses and statuses[0]["state"] == "warming_up"
    assert events[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert httpx.get(health_url).json()["loaded"] is True and engine.loads == 2


def test_bad_request_has_error_shape(model_server: BackgroundServer) -> None:
    response = httpx.post(f"{model_server.base_url}/chat/completions", json={"model": "tiny"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
