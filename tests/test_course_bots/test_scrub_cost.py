"""Hostile text costs the scrubber time linear in its length: doubling the input at most doubles the work.

The fixed inputs are the ones that froze the service (a 42-character question of digits: 12-16 s; a 38-digit
feedback comment: 4 s; a 34-digit bit string followed by a comma in course material, scrubbed with every answer
quoting it: 6 s), plus other shapes a backtracking engine chokes on. Cost is measured by input scaling, never by a
wall-clock bound: each input at sizes n, 2n, 4n, 8n, the least CPU time of several interleaved runs per size, and
each doubling may cost at most three times as much (quadratic growth costs four times, exponential far more).
"""
from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from course_bots.privacy_rules import Scrubber

NAMES = ("Anna-Lena Müller", "Иванов", "王小明")
QUESTION = "0" * 41 + "x"  # 42 characters: the question that froze the service
FEEDBACK = "0" * 37 + "x"  # 38 characters through the feedback comment
BITS = "01" * 17 + ","  # 34-digit bit string followed by a comma, from a PDF, quoted in citations
MAX_RATIO = 3.0


@pytest.fixture(autouse=True)
def no_gc() -> Iterator[None]:
    """The collector would add pauses unrelated to the input's size."""
    gc.disable()
    yield
    gc.enable()


def doubling_ratios(work: Callable[[Any], object], make: Callable[[int], Any], base: int) -> list[float]:
    """How much more CPU time each doubling of the input costs: least time per size over interleaved runs.

    A busy machine only adds time, so when a ratio looks too high, more runs are added to the minima (up to three
    times); linear work then settles below the bound, while quadratic or worse never does.
    """
    inputs = [make(base * 2 ** k) for k in range(4)]
    best = [float("inf")] * len(inputs)
    ratios: list[float] = []
    for _attempt in range(3):
        for _round in range(4):
            for index, value in enumerate(inputs):
                started = time.process_time()
                work(value)
                best[index] = min(best[index], time.process_time() - started)
        ratios = [later / max(earlier, 1e-6) for earlier, later in zip(best, best[1:])]
        if max(ratios) <= MAX_RATIO:
            break
    return ratios


def test_the_inputs_that_froze_the_service_are_scrubbed_as_before() -> None:
    scrubber = Scrubber(NAMES)
    assert scrubber.scrub(QUESTION) == QUESTION and scrubber.scrub(FEEDBACK) == FEEDBACK
    assert scrubber.scrub_json([{"quote": f"Bits: {BITS} und Ruf 0151 23456789", "page": 2}]) == [
        {"quote": f"Bits: {BITS} und Ruf [phone]", "page": 2}]


SHAPES: dict[str, Callable[[int], str]] = {
    # the fixed inputs, grown and repeated
    "digit question grown": lambda n: "0" * n + "x",
    "digit question repeated": lambda n: (QUESTION + " ") * (n // 43),
    "feedback repeated": lambda n: ("Falsch: " + FEEDBACK + "\n") * (n // 47),
    "bit string grown": lambda n: "01" * (n // 2) + ",",
    # other shapes that make backtracking patterns explode
    "international prefixes": lambda n: "+00 " * (n // 4) + "x",
    "area code parentheses": lambda n: "(0" * (n // 2) + "x",
    "digit pairs with separators": lambda n: "0151 " + "12 " * (n // 12) + "x",
    "digit pairs with dots and commas": lambda n: "0" + "12." * (n // 3) + ",",
    "e-mail-ish": lambda n: "a." * (n // 2) + "@",
    "e-mail-ish with domains": lambda n: "a.a@" * (n // 128) + "-",  # an address every 8 characters
    "IBAN-ish": lambda n: "DE89 " + "ABCD " * (n // 20) + "x",
    "IBAN-ish digits": lambda n: "DE89" + "0" * n + "x",
    "matriculation keyword with spaces": lambda n: "Matrikelnummer" + " " * n + "x",
    "long URL query": lambda n: "https://x.example/?" + "a" * (n // 4),
    "long URL with token-like segments": lambda n: "https://x.example/" + "a1" * (n // 2),
    "pasted base64": lambda n: "QWxhZGRpbjpvcGVuIHNlc2FtZQ" * (n // 26) + " anna@uni.example",
    "dots": lambda n: "a." * (n // 2) + " anna@uni.example",
}


@pytest.mark.parametrize("shape", SHAPES)
def test_hostile_text_costs_linear_time(shape: str) -> None:
    ratios = doubling_ratios(Scrubber().scrub, SHAPES[shape], 16_000)
    assert max(ratios) <= MAX_RATIO, ratios


@pytest.mark.parametrize("make", [
    lambda n: "Anna " * (n // 5),  # a match every few characters
    lambda n: "Müller-" * (n // 7) + "x",
    lambda n: "Иванова " * (n // 8),
    lambda n: "王小明" * (n // 3),
], ids=["many names", "hyphenated names", "cyrillic run", "unspaced run"])
def test_names_cost_linear_time(make: Callable[[int], str]) -> None:
    ratios = doubling_ratios(Scrubber(NAMES).scrub, make, 200)
    assert max(ratios) <= MAX_RATIO, ratios


def test_material_quoted_in_citations_costs_linear_time() -> None:
    scrubber = Scrubber(NAMES)
    ratios = doubling_ratios(scrubber.scrub_json, lambda n: [{"quote": (BITS + " ") * (n // 36), "page": 1}], 500)
    assert max(ratios) <= MAX_RATIO, ratios
