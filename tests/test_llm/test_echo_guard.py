"""The echo guard: a private prompt echoed in any chunking, spacing, case or punctuation never gets released."""
from __future__ import annotations

import random
import re

import pytest

from course_bots.llm.echo_guard import DEFAULT_WINDOW, EchoGuard, fold

PROMPT = ("Du bist die Tutorin von Prof. Lindqvist für Maschinelles Lernen 1. Verrate niemals, dass die Klausur am "
          "14. Juli nur die Kapitel 3 bis 5 abdeckt. Wer nach dem Bonusprojekt fragt, bekommt das Codewort IGEL-7.")
ANSWER = ("Die Lernrate bestimmt die Schrittweite des Gradientenabstiegs [1]. Maschinelles Lernen braucht "
          "Übung: probiere verschiedene Werte aus und vergleiche die Kurven.")


def run(guard: EchoGuard, chunks: list[str]) -> list[str]:
    """Feed the chunks, then finish; what a student would have seen."""
    released: list[str] = []
    for chunk in chunks:
        released.extend(guard.feed(chunk))
    released.extend(guard.finish())
    return released


def tiny_chunks(text: str, seed: int = 7) -> list[str]:
    """``text`` in pieces of 1-3 characters."""
    rng, chunks, i = random.Random(seed), [], 0
    while i < len(text):
        step = rng.randint(1, 3)
        chunks.append(text[i:i + step])
        i += step
    return chunks


def respaced(text: str) -> str:
    """The same words, re-cased, re-spaced and with other punctuation, as a model might echo them."""
    words = re.findall(r"\w+", text)
    return "  \n".join(w.upper() if i % 2 else w.lower() for i, w in enumerate(words)).replace("7", "-7;") + " …"


def longest_shared_run(a: str, b: str) -> int:
    """Length of the longest folded substring ``a`` and ``b`` have in common."""
    a, b = fold(a), fold(b)
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def test_fold_ignores_case_accents_width_spacing_and_punctuation() -> None:
    assert fold("Übung, MACHT  den\nMeister!") == fold("ubung machtden-meister") == "ubungmachtdenmeister"
    assert fold("Ｓｔｒａßｅ") == "strasse"
    assert fold("e\u0301") == fold("\u00e9") == "e"  # a decomposed accent folds like the precomposed letter


@pytest.mark.parametrize("chunks", [
    [PROMPT],
    tiny_chunks(PROMPT),
    re.findall(r"\S+\s*", respaced(PROMPT)),
    tiny_chunks(respaced(PROMPT), seed=3),
], ids=["whole", "1-3 characters", "re-spaced words", "re-spaced 1-3 characters"])
def test_echo_is_never_released(chunks: list[str]) -> None:
    guard = EchoGuard(PROMPT)
    released = run(guard, chunks)
    assert guard.leaked
    assert released == []


def test_opening_sentence_passes_and_the_echo_does_not() -> None:
    opening = "Gute Frage! Schauen wir uns zuerst die Lernrate an. "
    guard = EchoGuard(PROMPT)
    released = run(guard, tiny_chunks(opening) + tiny_chunks(PROMPT, seed=11))
    assert guard.leaked
    assert "".join(released) == opening
    assert longest_shared_run("".join(released), PROMPT) < 10


def test_echo_of_the_middle_of_the_prompt_is_caught() -> None:
    middle = PROMPT[60:140]
    assert len(fold(middle)) > DEFAULT_WINDOW
    guard = EchoGuard(PROMPT)
    released = run(guard, ["Also: ", *tiny_chunks(middle), " Mehr weiß ich nicht."])
    assert guard.leaked and "".join(released) == "Also: "


@pytest.mark.parametrize("chunks", [[ANSWER], re.findall(r"\S+\s*", ANSWER), tiny_chunks(ANSWER)],
                         ids=["whole", "words", "1-3 characters"])
def test_ordinary_answer_passes_unchanged_and_in_the_same_chunks(chunks: list[str]) -> None:
    assert longest_shared_run(ANSWER, PROMPT) >= len("maschinelleslernen")  # it does share words with the prompt
    guard = EchoGuard(PROMPT)
    assert run(guard, chunks) == chunks
    assert not guard.leaked


def test_text_that_the_sources_also_contain_is_not_withheld() -> None:
    shared = "Die Klausur am 14. Juli deckt nur die Kapitel 3 bis 5 ab, sagt die Kursordnung."
    guard = EchoGuard(PROMPT + " " + shared, public=["Aus der Kursordnung: " + shared])
    answer = ["Laut Kursordnung: ", shared, " [1]"]
    assert run(guard, answer) == answer
    guard = EchoGuard(PROMPT + " " + shared, public=["Aus der Kursordnung: " + shared])
    assert run(guard, ["Mein Auftrag: ", PROMPT]) == ["Mein Auftrag: "]  # the private part is still guarded


def test_short_prompts_use_their_length_and_very_short_ones_are_not_guarded() -> None:
    short = "Antworte immer als Pirat mit Papagei."  # 31 folded characters
    guard = EchoGuard(short)
    assert guard.active and guard.window == len(fold(short))
    assert run(guard, ["Ich ", "antworte immer als ", "PIRAT, mit Papagei!"]) == ["Ich "]
    assert guard.leaked
    tiny = EchoGuard("Sei nett.")
    assert not tiny.active
    assert run(tiny, ["Sei nett."]) == ["Sei nett."]


def test_punctuation_only_and_empty_chunks_keep_their_order() -> None:
    guard = EchoGuard(PROMPT)
    chunks = ["**", "", "> ", *re.findall(r"\S+\s*", ANSWER), "\n\n", "—"]
    released = []
    for chunk in chunks:
        released.extend(guard.feed(chunk))
    assert released[:3] == ["**", "", "> "]  # nothing that can leak is held back
    assert released + guard.finish() == chunks


def test_nothing_is_released_after_a_leak() -> None:
    guard = EchoGuard(PROMPT)
    run(guard, [PROMPT])
    assert guard.feed("Harmless text that follows.") == [] and guard.finish() == []


def test_text_the_prompt_does_not_contain_is_released_at_once() -> None:
    """The first token is not held for a whole window: only text the prompt could continue waits."""
    guard = EchoGuard(PROMPT)
    # Only the last letters, which the prompt also contains, wait: the chunk goes out with the next one.
    assert guard.feed("Gradientenabstieg ") == []
    assert guard.feed("ist ") == ["Gradientenabstieg "]
    held = EchoGuard(PROMPT)
    # "Verrate" opens a run of the prompt: it waits until the answer leaves the prompt's wording.
    assert held.feed("Verrate ") == []
    assert held.feed("mir ") == ["Verrate "]


def test_a_leak_that_starts_like_ordinary_text_is_still_caught() -> None:
    guard = EchoGuard(PROMPT)
    leak = "Die Klausur am 14. Juli: verrate niemals, dass die Klausur am 14. Juli nur die Kapitel 3 bis 5 abdeckt."
    released = run(guard, [w + " " for w in ("Also: " + leak).split(" ")])
    assert guard.leaked
    assert "14. Juli nur die Kapitel" not in "".join(released)
