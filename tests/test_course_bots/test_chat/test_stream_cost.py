"""The per-token path's shortcuts write exactly what the general path wrote, and meter exactly what it metered."""
from __future__ import annotations

import json
from typing import Any

import pytest

from course_bots.chat import usage
from course_bots.chat.api import sse
from lti_tool import metrics

TEXTS = ["a", "Größe ü", 'quote " backslash \\ newline \n tab \t', "</script><b>", "\x00\x1f\u2028\u2029", "😀", ""]


@pytest.mark.parametrize("text", TEXTS)
def test_token_events_are_byte_for_byte_what_json_dumps_writes(text: str) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("token", {"text": text}), ("token", {"text": text, "extra": 1}),
        ("done", {"html": text, "citations": [{"quote": None}]}),
        ("error", {"code": "internal", "message": text, "position": None})]
    for name, data in cases:
        written = sse(name, data)
        assert written == f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        event, payload = written.rstrip("\n").split("\n")
        assert event == f"event: {name}" and json.loads(payload[len("data: "):]) == data


def test_a_non_text_token_payload_is_still_json() -> None:
    assert sse("token", {"text": 5}) == 'event: token\ndata: {"text": 5}\n\n'


def _count(metric: Any) -> float:
    return sum(s.value for m in metric.collect() for s in m.samples if s.name.endswith("_count"))


def test_the_meter_observes_the_first_token_once_and_passes_every_event_on() -> None:
    before = _count(metrics.FIRST_TOKEN)
    events: list[tuple[str, dict[str, Any]]] = [("status", {"state": "started"}), ("token", {"text": "a"}),
                                                ("status", {"state": "queued", "position": 1}),
                                                ("token", {"text": "b"}), ("token", {"text": "c"}),
                                                ("error", {"code": "timeout"})]
    assert list(usage.metered(iter(events))) == events
    assert _count(metrics.FIRST_TOKEN) == before + 1
