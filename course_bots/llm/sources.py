"""The delimited block a source passage sits in, and the neutralising that keeps document text inside it.

Course materials are untrusted: a document must not be able to close its block, open a new chat turn or
pose as the system. Its text is normalised (NFKC folds look-alike characters such as a full-width ``＜``),
invisible control characters go, and delimiter look-alikes and chat role markers are replaced by ``[…]``.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Sequence

from retrieval.listings import listing_lines

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
_LEADING_BLANK_LINES = re.compile(r"\A(?:[^\S\n]*\n)+")
_BLOCK = re.compile(r'<source n="(\d+)" ref="([^"\n]*)">\n(.*?)\n</source>', re.S)


def neutralise(text: str) -> str:
    """Document text that can neither close its block nor pose as a chat turn or instruction header."""
    # Pure, so passage-sized texts are cached: the prompt is rebuilt several times while passages are fitted, each
    # time with the same texts (bounded: at most 2,048 texts of at most 8 KiB).
    return _neutralise_cached(text) if len(text) <= 8192 else _neutralise(text)


def _neutralise(text: str) -> str:
    """:func:`neutralise`, uncached."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    previous = None
    while previous != text:  # removing one marker must not assemble another from the remains
        previous, text = text, _MARKER.sub(REPLACEMENT, text)
    text = _LEADING_BLANK_LINES.sub("", text.rstrip())
    if text[:1].isspace() and 0 not in listing_lines(text.split("\n")):
        return text.lstrip()  # stray spaces in front of prose; a listing's first line keeps its indentation
    return text


_neutralise_cached = lru_cache(maxsize=2048)(_neutralise)


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


# A line of program code as slides and listings show it: ends in ; { } or ), starts with a brace, a keyword
# followed by code punctuation, or an assignment/call. Prose (sentences with spaces and a full stop) is not code.
_CODE_END = re.compile(r"(?:[;{}]|\)\s*(?:\{|:)?|\*/|:\s*#.*)\s*$")
_CODE_START = re.compile(
    r"^\s*(?:[{}]|//|/\*|\*\s|#include\b|@\w+|(?:public|private|protected|static|final|class|interface|def|"
    r"return|import|package|for|while|if|elif|else|try|catch|except|finally|switch|case|void|int|long|"
    r"double|float|boolean|char|String|var|let|const|function|lambda|print|System\.out)\b)")
_CODE_SHAPE = re.compile(r"\w[\w.<>\[\]]*\s*(?:[+\-*/%]?=|==|!=|->|=>|\+\+|--)|\w\(.*\)|\w\.\w+\(")
_BULLET = re.compile(r"^\s*[•▪◦‣∙●○■□–\-*]\s+")
_ORDERED = re.compile(r"^\s*\d{1,3}[.)]\s+")
_MD_SPECIAL = re.compile(r"([`*_~])")


def looks_like_code(line: str) -> bool:
    """Whether one line of extracted text is (most likely) program code rather than prose."""
    text = line.strip()
    if not text or len(text) > 160:
        return False
    if re.search(r"[.!?]\s+[A-ZÄÖÜ]", text) or (text.endswith(".") and len(text.split()) > 3):
        return False  # sentences
    start, end = bool(_CODE_START.match(text)), bool(_CODE_END.search(text))
    shape = bool(_CODE_SHAPE.search(text))
    return end and (start or shape or text in ("{", "}", "};")) or (start and shape) or text in ("{", "}")


def passage_blocks(text: str) -> list[tuple[str, list[str]]]:
    """A passage's lines grouped as ``("code", lines)`` (two or more code-like lines in a row) or ``("text", ...)``."""
    lines = [line.rstrip() for line in (text or "").replace("\r\n", "\n").split("\n")]
    listing = listing_lines(lines)  # an indented listing is code line by line (``    return -x`` too)
    code = [i in listing or looks_like_code(line) for i, line in enumerate(lines)]
    # A single plain line between code lines (``else``, ``String name = x``) belongs to the code.
    for i in range(1, len(lines)):
        opened = code[i - 1] and lines[i - 1].rstrip().endswith((":", "{"))
        closed = i + 1 < len(lines) and code[i - 1] and code[i + 1]
        if not code[i] and lines[i].strip() and (opened or closed):
            code[i] = True
    blocks: list[tuple[str, list[str]]] = []
    for line, is_code in zip(lines, code):
        kind = "code" if is_code else "text"
        if blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(line)
        else:
            blocks.append((kind, [line]))
    merged: list[tuple[str, list[str]]] = []
    for kind, block in blocks:  # a lone code-like line among prose stays prose
        if kind == "code" and len([b for b in block if b.strip()]) < 2:
            kind = "text"
        if merged and merged[-1][0] == kind == "text":
            merged[-1][1].extend(block)
        else:
            merged.append((kind, list(block)))
    return [(kind, block) for kind, block in merged if any(b.strip() for b in block)]


def escape_markdown(text: str) -> str:
    """Plain text that markdown shows as it is: no emphasis, links or headings (formulas still render)."""
    text = _MD_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;")).replace("[", "&#91;").replace("]", "&#93;")
    return re.sub(r"^(\s*)([#+=-]|\d+[.)])", r"\1\\\2", text)


def code_fence(lines: Sequence[str]) -> str:
    """Lines as a fenced code block whose fence no backtick run inside can close."""
    body = "\n".join(lines).strip("\n")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{body}\n{fence}"


def reindent(lines: Sequence[str]) -> list[str]:
    """Code lines whose indentation the PDF lost, indented again by their braces (kept as they are otherwise)."""
    if any(line[:1] in (" ", "\t") for line in lines) or not any("{" in line for line in lines):
        return list(lines)
    depth, out = 0, []
    for line in lines:
        text = line.strip()
        if text.startswith("}"):
            depth = max(0, depth - 1)
        out.append("    " * depth + text)
        depth = max(0, depth + text.count("{") - text.count("}") + (1 if text.startswith("}") else 0))
    return out


def passage_markdown(text: str) -> str:
    """A quoted passage as markdown that keeps its structure: code runs as code blocks, bullets as lists."""
    out: list[str] = []
    for kind, lines in passage_blocks(text):
        if kind == "code":
            out.append(code_fence(reindent(lines)))
            continue
        paragraph: list[str] = []
        previous = ""
        for line in lines:
            stripped = line.strip()
            if not stripped:
                if paragraph:
                    out.append("\n".join(paragraph))
                    paragraph = []
                continue
            item = bool(_BULLET.match(stripped) or _ORDERED.match(stripped))
            if paragraph and item != paragraph[-1].startswith(("- ", *(f"{n}. " for n in range(10)))):
                out.append("\n".join(paragraph))  # a list starts or ends: a new block
                paragraph = []
            if _BULLET.match(stripped):
                paragraph.append("- " + escape_markdown(_BULLET.sub("", stripped)))
            elif _ORDERED.match(stripped):
                number = re.match(r"\d+", stripped)
                paragraph.append(f"{number.group(0) if number else 1}. " + escape_markdown(_ORDERED.sub("", stripped)))
            else:
                if paragraph and not item and not paragraph[-1].startswith("- ") and keeps_break(previous, stripped):
                    paragraph[-1] += "\\"  # a hard line break: a title or a full line of a slide stays a line
                paragraph.append(escape_markdown(stripped))
            previous = stripped
        if paragraph:
            out.append("\n".join(paragraph))
    return "\n\n".join(out)


def keeps_break(line: str, following: str) -> bool:
    """Whether the break after ``line`` is the text's own (a title, a full sentence) rather than a wrapped line."""
    return not (following[:1].islower() or line.endswith((",", "-", "–")))
