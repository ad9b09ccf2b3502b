"""The continuous-batching engine on a tiny real model: streaming, batching, queue, limits, idle unload."""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from course_bots.llm.base import (Busy, DoneEvent, ErrorEvent, Event, GenerationParams, StatusEvent, TokenEvent,
                                  collect)
from course_bots.llm.engine import Engine, EngineOptions
from course_bots.llm.local import LocalBackend
from course_bots.llm.tiny import build_tiny_model

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Was ist ein Eigenwert?"}]


def fixed(n: int, **kw: object) -> GenerationParams:
    """Greedy params producing exactly ``n`` tokens (end-of-sequence ignored)."""
    return GenerationParams(max_new_tokens=n, ignore_eos=True, **kw)  # type: ignore[arg-type]


def run(engine: Engine, messages: list[dict[str, str]], params: GenerationParams) -> list[Event]:
    """All events of one completion."""
    return list(LocalBackend("tiny", engine=engine).stream(messages, params))


def test_loads_model_and_renders_chat_template(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    ids = engine.tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert ids.startswith("<|im_start|>system\nBe brief.<|im_end|>") and ids.endswith("<|im_start|>assistant\n")
    assert engine.count_tokens(QUESTION) == len(engine.tokenizer(ids, add_special_tokens=False)["input_ids"])
    events = run(engine, QUESTION, fixed(12))
    assert engine.health().loaded and engine.loads == 1
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert tokens and isinstance(events[-1], DoneEvent)
    assert events[-1].finish_reason == "length"
    assert events[-1].usage.completion_tokens == 12
    assert events[-1].usage.prompt_tokens == engine.count_tokens(QUESTION)


def test_batched_answers_equal_answers_alone(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(max_batch=8)
    prompts = [[{"role": "user", "content": "frage " * i}] for i in range(1, 7)]  # different lengths: padding
    alone = [collect(run_iter(engine, p, fixed(32))).text for p in prompts]
    together: dict[int, str] = {}
    start = threading.Barrier(len(prompts))

    def ask(i: int) -> None:
        start.wait()  # submit together, so the requests overlap even on a busy machine
        together[i] = collect(run_iter(engine, prompts[i], fixed(32))).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(engine.step_batch_sizes) >= 2
    assert [together[i] for i in range(len(prompts))] == alone


def run_iter(engine: Engine, messages: list[dict[str, str]], params: GenerationParams) -> Iterator[Event]:
    """The event iterator of one completion."""
    return LocalBackend("tiny", engine=engine).stream(messages, params)


def test_continuous_batching_shares_steps_and_interleaves(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(max_batch=8)
    log: list[str] = []
    first_a, b_done = threading.Event(), threading.Event()

    def consume_a() -> None:
        for event in run_iter(engine, [{"role": "user", "content": "a"}], fixed(1800)):
            if isinstance(event, TokenEvent):
                log.append("a")
                first_a.set()
            if b_done.is_set():
                log.append("a")  # a was still generating after b's end
                return  # closing the stream cancels a

    def consume_b() -> None:
        for event in run_iter(engine, [{"role": "user", "content": "b"}], fixed(20)):
            if isinstance(event, TokenEvent):
                log.append("b")
        b_done.set()

    a = threading.Thread(target=consume_a)
    a.start()
    assert first_a.wait(20)
    b = threading.Thread(target=consume_b)  # joins while a is running: no waiting for a to end
    b.start()
    b.join(60)
    a.join(60)
    assert max(engine.step_batch_sizes) >= 2, "two sequences shared one forward step"
    first_b, last_b = log.index("b"), len(log) - 1 - log[::-1].index("b")
    assert "a" in log[first_b:last_b], "a's tokens arrived while b was streaming"
    assert log[-1] == "a", "b finished while a was still generating"


def test_cancel_stops_generation(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    stream: Any = run_iter(engine, QUESTION, fixed(1500))  # a generator: closing it cancels
    for event in stream:
        if isinstance(event, TokenEvent):
            break
    stream.close()  # a client going away
    deadline = time.monotonic() + 5
    while engine.health().active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.health().active == 0
    events: queue.Queue[Event] = queue.Queue()
    rid = engine.submit(QUESTION, fixed(1500), events.put)
    engine.cancel(rid)
    seen = [events.get(timeout=5)]
    while not isinstance(seen[-1], (DoneEvent, ErrorEvent)):
        seen.append(events.get(timeout=5))
    assert isinstance(seen[-1], DoneEvent) and seen[-1].finish_reason == "cancelled"


def test_full_queue_answers_busy_with_position_at_once(make_engine: Callable[..., Engine],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(max_batch=1, max_queue=2)
    gate = threading.Event()  # shut: decoding stops, so nothing ahead in line can finish or start meanwhile
    gate.set()
    decode_step = engine._decode_step

    def gated_step() -> None:
        gate.wait(60)
        decode_step()

    monkeypatch.setattr(engine, "_decode_step", gated_step)
    running: queue.Queue[Event] = queue.Queue()
    first = engine.submit(QUESTION, fixed(1800), running.put)
    while not isinstance(running.get(timeout=20), TokenEvent):  # admitted: the only batch slot is taken
        pass
    waiting: list[queue.Queue[Event]] = [queue.Queue(), queue.Queue()]
    for q in waiting:
        engine.submit(QUESTION, fixed(2), q.put)
    gate.clear()
    try:
        with pytest.raises(Busy) as busy:
            engine.submit(QUESTION, fixed(2), lambda e: None)
        load = engine.health()
        assert (load.active, load.queue_length) == (1, 2), "busy is answered while the line stands still"
    finally:
        gate.set()
    assert busy.value.position == 3 and "number 3" in str(busy.value)
    assert waiting[1].get(timeout=5) == StatusEvent("queued", 2)
    engine.cancel(first)
    later = _events_until_done(waiting[1])
    assert StatusEvent("queued", 1) in later, "the place in line moves up"
    assert isinstance(later[-1], DoneEvent) and later[-1].finish_reason == "length"
    assert isinstance(_events_until_done(running)[-1], DoneEvent)


def _events_until_done(q: "queue.Queue[Event]") -> list[Event]:
    """Read events until the completion ends."""
    seen: list[Event] = []
    while not seen or not isinstance(seen[-1], (DoneEvent, ErrorEvent)):
        seen.append(q.get(timeout=20))
    return seen


def test_limits_hold(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(max_context=160)  # a small window keeps the test fast
    full = collect(run_iter(engine, QUESTION, fixed(40)))
    assert full.usage.completion_tokens == 40 and full.finish_reason == "length"
    stop = full.text[len(full.text) // 2: len(full.text) // 2 + 3]
    cut = collect(run_iter(engine, QUESTION, fixed(40, stop=(stop,))))
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert full.text.startswith(cut.text) and len(cut.text) < len(full.text)
    wide = make_engine()  # the full 2048-token window: far more tokens than fit in the time limit
    assert wide.wait_ready(30)
    slow = collect(run_iter(wide, QUESTION, fixed(100_000, timeout_s=0.2)))
    assert slow.finish_reason == "timeout" and 0 < slow.usage.completion_tokens < 2000
    window = collect(run_iter(engine, QUESTION, fixed(100_000)))
    assert window.finish_reason == "length"
    assert window.usage.prompt_tokens + window.usage.completion_tokens == 160  # the context window
    too_long = list(run_iter(engine, [{"role": "user", "content": "wort " * 200}], fixed(5)))
    assert isinstance(too_long[-1], ErrorEvent) and too_long[-1].code == "bad_request"


def test_idle_unload_and_reload_reports_warming_up(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(idle_unload_s=0.3)
    assert collect(run_iter(engine, QUESTION, fixed(3))).usage.completion_tokens == 3
    deadline = time.monotonic() + 10
    while engine.health().loaded and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not engine.health().loaded, "the model was unloaded after the idle time"
    assert engine.count_tokens(QUESTION) > 0  # counting still works without weights
    events = run(engine, QUESTION, fixed(3))
    assert events[0] == StatusEvent("warming_up")
    assert isinstance(events[-1], DoneEvent) and engine.loads == 2


def test_other_architecture_qwen2(tmp_path: "pytest.TempPathFactory") -> None:
    engine = Engine(str(build_tiny_model(tmp_path, arch="qwen2")), EngineOptions(max_batch=4))  # type: ignore
    try:
        prompts = [[{"role": "user", "content": "a" * i}] for i in (1, 9)]
        alone = [collect(run_iter(engine, p, fixed(8))).text for p in prompts]
        together: dict[int, str] = {}
        threads = [threading.Thread(target=lambda i=i, p=p: together.__setitem__(
            i, collect(run_iter(engine, p, fixed(8))).text)) for i, p in enumerate(prompts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [together[0], together[1]] == alone
    finally:
        engine.shutdown()


@pytest.mark.gpu
def test_runs_in_bfloat16_on_cuda(tiny_model: str) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    engine = Engine(tiny_model, EngineOptions(max_batch=8))
    try:
        assert engine.wait_ready(120)
        assert engine._loaded is not None and engine._loaded.model.dtype == torch.bfloat16
        results: dict[int, int] = {}
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(
            i, collect(run_iter(engine, QUESTION, fixed(32))).usage.completion_tokens)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert list(results.values()) == [32] * 8 and max(engine.step_batch_sizes) >= 2
    finally:
        engine.shutdown()


def test_kv_budget_holds_requests_back(make_engine: Callable[..., Engine]) -> None:
    # QUESTION is ~25 tokens: one request reserves ~45 KV positions with 20 new tokens, two do not fit in 60.
    engine = make_engine(max_batch=8, max_batch_tokens=60)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(collect(run_iter(engine, QUESTION, fixed(20))).text))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert max(engine.step_batch_sizes) == 1, "only one request's KV reservation fits the budget"


def test_a_failing_consumer_does_not_break_the_batch(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    assert engine.wait_ready(30)

    def broken(event: Event) -> None:
        if isinstance(event, TokenEvent):
            raise RuntimeError("client gone")

    engine.submit(QUESTION, fixed(200), broken)
    answer = collect(run_iter(engine, QUESTION, fixed(30)))
    assert answer.usage.completion_tokens == 30
    deadline = time.monotonic() + 5
    while engine.health().active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.health().active == 0, "the broken request was cancelled"


def test_failed_prefill_answers_with_an_error_and_the_engine_goes_on(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    assert engine.wait_ready(30)
    batch = engine._batch
    assert batch is not None
    real_prefill = batch.prefill

    def out_of_memory(*args: object, **kwargs: object) -> object:
        batch.prefill = real_prefill  # type: ignore[method-assign]  # fail once
        raise MemoryError("simulated")

    batch.prefill = out_of_memory  # type: ignore[method-assign]
    failed = list(run_iter(engine, QUESTION, fixed(5)))
    assert failed == [ErrorEvent("internal", "Generation failed: MemoryError")]
    assert collect(run_iter(engine, QUESTION, fixed(5))).usage.completion_tokens == 5


def test_a_failing_load_is_retried_after_a_pause_not_on_every_request(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(load_on_start=False, load_retry_s=600)  # a pause no slow machine outlasts
    real_loader = engine._loader
    calls: list[float] = []

    def flaky() -> Any:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise OSError("simulated: weights not readable")
        return real_loader()

    engine._loader = flaky
    first = run(engine, QUESTION, fixed(3))
    assert isinstance(first[-1], ErrorEvent) and first[-1].code == "unavailable"
    second = run(engine, QUESTION, fixed(3))  # inside the pause: refused at once, no second load
    assert isinstance(second[-1], ErrorEvent) and "next attempt" in second[-1].message and len(calls) == 1
    engine._retry_at = 0.0  # the pause is over (instead of sleeping through it)
    assert collect(run_iter(engine, QUESTION, fixed(3))).usage.completion_tokens == 3
    assert len(calls) == 2 and engine.loads == 1
