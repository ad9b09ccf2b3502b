"""PDF code listings: the indentation pdfium drops, rebuilt from where each monospace line's first glyph stands.

pdfium's page text starts every line at its first glyph: ``"    return x"`` comes out as ``"return x"`` (or with
one space), so a Python listing loses its blocks. For a line set in a monospace font (Courier, Consolas, LaTeX's
cmtt, any "...Mono"), the distance of its first glyph from the listing's left edge, in character widths, is its
indentation. Only pages with a top-level monospace text object are read character by character; other lines are
left as they were. Whether a line keeps the indentation is clean-up's decision (``retrieval.listings``).
"""
from __future__ import annotations

import ctypes
import logging
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

MAX_CHARS = 200_000  # characters of a page looked at (the loader runs with time and memory limits)
MAX_OBJECTS = 20_000  # page objects looked at for a monospace font
_MAX_INDENT = 40  # columns: more is a layout (two listings side by side), not an indentation
_MAX_STEPS = 40  # glyph distances per line kept for the character width (they are all the same in a listing)
_MONO_SHARE = 0.8  # a line is monospace when this share of its glyphs is (inline code in prose is not a listing)
_MONO_NAME = re.compile(r"mono|courier|consol|code|typewriter|cmtt|lmtt|ectt|sftt|txtt|menlo|monaco|inconsolata|"
                        r"cousine|andale|lettergothic|fixedsys", re.IGNORECASE)
_NEWLINES = {0x0A, 0x0D}
_MARKS = {0, 2, 0xFFFE}
_LINE_NUMBER = re.compile(r"^\s*\d+\s*")


@dataclass
class _Line:
    """What one line of the page's characters says about its layout."""

    key: list[str] = field(default_factory=list)  # its glyphs without spaces (how it is found in the page text)
    x: float | None = None  # origin of its first glyph
    mono: int = 0
    glyphs: int = 0
    steps: list[float] = field(default_factory=list)  # distances between neighbouring monospace glyphs
    words: list[tuple[int, float]] = field(default_factory=list)  # where each word starts: (index in key, x)

    @property
    def monospace(self) -> bool:
        """Whether (nearly) all of the line's glyphs are set in a monospace font."""
        return self.glyphs > 0 and self.mono >= _MONO_SHARE * self.glyphs

    @property
    def number(self) -> int | None:
        """The line number it starts with (its first word, all digits), if any."""
        end = self.words[1][0] if len(self.words) > 1 else len(self.key)
        digits = "".join(self.key[:end])
        return int(digits) if digits.isdigit() and len(digits) <= 5 else None


def _font_name(font: Any) -> str:
    """A font's base name ("ABCDEF+UbuntuMono-Regular"); "" when pdfium cannot say."""
    import pypdfium2.raw as raw

    size = raw.FPDFFont_GetBaseFontName(font, None, 0)
    if size <= 1 or size > 1024:
        return ""
    buffer = ctypes.create_string_buffer(size)
    raw.FPDFFont_GetBaseFontName(font, buffer, size)
    return buffer.value.decode("latin-1", errors="replace")


def _monospace_objects(page: Any, names: dict[int | None, bool]) -> set[int | None]:
    """Addresses of the page's top-level text objects set in a monospace font (by the font's name).

    ``names`` caches, per font handle, whether it is monospace (pdfium keeps one handle per font and document).
    """
    import pypdfium2.raw as raw

    found: set[int | None] = set()
    for i in range(min(raw.FPDFPage_CountObjects(page), MAX_OBJECTS)):
        obj = raw.FPDFPage_GetObject(page, i)
        font = raw.FPDFTextObj_GetFont(obj) if obj else None  # null for paths, images and forms
        if not font:
            continue
        address = ctypes.cast(font, ctypes.c_void_p).value
        if address not in names:
            names[address] = bool(_MONO_NAME.search(_font_name(font)))
        if names[address]:
            found.add(ctypes.cast(obj, ctypes.c_void_p).value)
    return found


def _lines(textpage: Any, monospace: set[int | None]) -> list[_Line]:
    """The page's lines of characters, with where each starts and which of its glyphs are monospace."""
    import pypdfium2.raw as raw

    lines = [_Line()]
    x, y = ctypes.c_double(), ctypes.c_double()
    previous: tuple[int, int | None, float] | None = None  # (index, text object, x) of the last glyph
    gap = True  # the next glyph starts a word
    for i in range(min(raw.FPDFText_CountChars(textpage), MAX_CHARS)):
        code = raw.FPDFText_GetUnicode(textpage, i)
        if code in _NEWLINES:
            if lines[-1].glyphs:
                lines.append(_Line())
            previous, gap = None, True
            continue
        obj = raw.FPDFText_GetTextObject(textpage, i)
        if not obj:  # a space or line break pdfium generated
            gap = True
            continue
        address = ctypes.cast(obj, ctypes.c_void_p).value
        line = lines[-1]
        mono = address in monospace
        if mono:  # where a glyph stands matters only in a listing
            raw.FPDFText_GetCharOrigin(textpage, i, ctypes.byref(x), ctypes.byref(y))
            if previous is not None and previous[0] == i - 1 and previous[1] == address and x.value > previous[2] \
                    and len(line.steps) < _MAX_STEPS:
                line.steps.append(x.value - previous[2])
            previous = (i, address, x.value)
        if code in _MARKS or chr(code).isspace():
            gap = gap or code not in _MARKS
            continue
        if line.x is None and mono:
            line.x = x.value
        if gap:
            line.words.append((len(line.key), x.value if mono else 0.0))
            gap = False
        line.key.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "")
        line.glyphs += 1
        line.mono += mono
    return [line for line in lines if line.glyphs]


def _numbered(block: list[_Line]) -> bool:
    """Whether every line of a listing starts with its line number (1, 2, 3 ... in a gutter left of the code)."""
    numbers = [n for n in (line.number for line in block) if n is not None]
    return 2 <= len(numbers) == len(block) and any(len(line.words) > 1 for line in block) \
        and all(a < b for a, b in zip(numbers, numbers[1:]))


def _indents(lines: list[_Line]) -> dict[str, list[tuple[int, bool]]]:
    """Per monospace line (by its glyphs): its indentation in columns from its listing's left edge, and whether it
    starts with a gutter line number (which is dropped), in page order."""
    found: dict[str, list[tuple[int, bool]]] = {}
    block: list[_Line] = []
    for line in lines + [_Line()]:  # an empty line ends the last block
        if line.monospace:
            block.append(line)
            continue
        steps = [step for b in block for step in b.steps]
        if block and steps:
            width = statistics.median(steps)
            numbered = _numbered(block)
            starts = [(b.words[1][1] if len(b.words) > 1 else None) if numbered else b.x for b in block]
            # Line numbers on lines of their own ("1", "2", ... beside the code) are not the listing's left edge.
            code = [x for b, x in zip(block, starts) if x is not None and not "".join(b.key).isdigit()]
            left = min(code or [x for x in starts if x is not None] or [0.0])
            for b, x in zip(block, starts):
                columns = round(((x if x is not None else left) - left) / width) if width > 0 else 0
                found.setdefault("".join(b.key), []).append((min(max(columns, 0), _MAX_INDENT), numbered))
        block = []
    return found


def indent_listings(text: str, page: Any, textpage: Any, fonts: dict[int | None, bool] | None = None) -> str:
    """The page text with each monospace line indented as it stands on the page; other text unchanged.

    ``fonts``: a cache shared by the pages of one document (which fonts are monospace).
    """
    try:
        monospace = _monospace_objects(page, {} if fonts is None else fonts)
        indents = _indents(_lines(textpage, monospace)) if monospace else {}
    except MemoryError:
        raise
    except Exception as exc:  # a font or object pdfium cannot describe: the page keeps its plain text
        log.info("listing layout not readable (%s); the page keeps its text", type(exc).__name__)
        return text
    if not any(columns or numbered for queue in indents.values() for columns, numbered in queue):
        return text
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        queue = indents.get("".join(c for c in line if not c.isspace() and c not in "\x02\ufffe\x00"))
        if not queue:
            out.append(line)
            continue
        columns, numbered = queue.pop(0)
        code = _LINE_NUMBER.sub("", line) if numbered else line.lstrip(" ")
        out.append(" " * columns + code if code.strip() else "")
    return "\n".join(out)
