"""Sentences of lecture text, German first: a full stop ends one only after a word of three or more letters
(or a year).

So ordinals and dates ("am 12. Februar"), single letters ("z. B.", "d. h.", initials) never end a sentence, and
neither do the longer abbreviations of lecture texts ("Kap. 4", "Prof. Meier", "Abb. 3"). ``?`` and ``!`` always do.
Linear time: one split, then a check at the end of each piece.
"""
from __future__ import annotations

import re

_END = re.compile(r"(?<=[^\W\d_]{3}[.!?])\s+|(?<=[?!])\s+|(?<=\d{4}\.)\s+")  # a year may end one: "seit 2017."
ABBREVIATIONS = ("bzw", "vgl", "Abb", "Kap", "Prof", "ggf", "evtl", "inkl", "bspw", "Tab", "Hrsg", "Mio", "Mrd",
                 "sog", "Bsp", "Str", "Fig", "Sec", "Aufl", "Nr")
_ABBREVIATION_END = re.compile(r"\b(?:" + "|".join(ABBREVIATIONS) + r")\.$")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (one line or a paragraph), in order; empty pieces dropped."""
    sentences: list[str] = []
    for piece in _END.split(text):
        if sentences and _ABBREVIATION_END.search(sentences[-1]):
            sentences[-1] += " " + piece
        elif piece.strip():
            sentences.append(piece)
    return sentences
