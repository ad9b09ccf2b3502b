"""The delimited block a source passage sits in, and the neutralising that keeps document text inside it.

Course materials are untrusted: a document must not be able to close its block, open a new chat turn or
pose as the system. Its text is normalised (NFKC folds look-alike characters such as a full-width ``＜``),
invisible control characters go, and delimiter look-alikes and chat role markers are replaced by ``[…]``.
"""
from __future__ import annotations

import re
import unicodedata

from .base import Passage

REPLACEMENT = "[…]"
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_MARKERS = [
    r"<\s*/?\s*source\b[^>\n]*>?",  # our own delimiter, opening or closing, complete or not
    r"&lt;\s*/?\s*source\b.*?(?:&gt;|$)",  # the same, HTML-escaped
    r"<\|[^|\n]{0,40}\|>",  # <|im_start|>, <|eot_id|>, <|start_header_id|>, <|endoftext|> ...
    r"<\|?\s*/?\s*(?:im_start|im_end|system|user|assistant|endoftext)\b\s*\|?>?",
    r"\[/?INST\]", r"<</?SYS>>", r"</?s>", r"<\s*/?\s*(?:start|end)_of_turn\s*>",
    r"^[ \t]*#{1,6}[ \t]*(?:system|instructions?|user|assistant|response|human)[ \t]*:?",
    r"^[ \t]*(?:system|assistant|human)[ \t]*:",
]
_MARKER = re.compile("|".join(f"(?:{m})" for m in _MARKERS), re.IGNORECASE | re.MULTILINE)
_BLOCK = re.compile(r'<source n="(\d+)" ref="([^"\n]*)">\n(.*?)\n</source>', re.S)


def neutralise(text: str) -> str:
    """Document text that can neither close its block nor pose as a chat turn or instruction header."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    previous = None
    while previous != text:  # removing one marker must not assemble another from the remains
        previous, text = text, _MARKER.sub(REPLACEMENT, text)
    return text.strip()


def _attribute(value: str) -> str:
    """A label safe inside a double-quoted attribute on one line."""
    value = neutralise(value)
    return re.sub(r'["<>\n\r]', " ", value).strip()


def format_source_block(passage: Passage) -> str:
    """``<source n="1" ref="Lecture 3.pdf, page 4">`` + neutralised text + ``</source>``."""
    return f'<source n="{passage.number}" ref="{_attribute(passage.label)}">\n{neutralise(passage.text)}\n</source>'


def parse_source_blocks(text: str) -> list[Passage]:
    """The passages of every source block in ``text`` (the extractive backend reads prompts this way)."""
    return [Passage(int(n), label, body) for n, label, body in _BLOCK.findall(text)]
