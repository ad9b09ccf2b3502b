"""Code listings inside extracted text: which lines belong to one, so that their indentation survives clean-up.

Text clean-up strips every line, which is right for prose (PDFs and text files scatter stray leading spaces) and
wrong for code, where indentation is meaning (Python) or at least the shape a student recognises. A listing is
a run of lines whose indentation varies (one line indented by two columns or more) and of which at least a third
look like code: a keyword, code punctuation at the end, an assignment, a comparison or a call. Loaders and the
chunker ask the same question, so a listing that keeps its indentation in a page's text keeps it in its chunks.
"""
from __future__ import annotations

import re
from typing import Sequence

TAB_WIDTH = 4
_MIN_INDENT = 2  # one stray space in front of a line is noise; two or more columns are a layout
_KEYWORDS = (
    "def|class|return|import|from|if|elif|else|for|while|try|except|finally|with|yield|raise|lambda|pass|break|"
    "continue|async|await|print|assert|del|global|public|private|protected|static|final|abstract|interface|"
    "extends|implements|void|int|long|short|byte|double|float|boolean|bool|char|String|var|let|const|function|"
    "fn|func|package|switch|case|default|catch|throw|throws|new|struct|enum|template|typedef|using|namespace|"
    "begin|end|then|do|fi|done|echo|SELECT|FROM|WHERE|INSERT|UPDATE|CREATE")
_CODE_START = re.compile(rf"^(?:[{{}}\])]|//|/\*|\*/|#|@\w|>>>|\$ |(?:{_KEYWORDS})\b(?!-))")
# Pseudocode keywords count in capitals only: "Wenn" and "Für" also begin German sentences.
_PSEUDO_START = re.compile(r"^(?:WENN|DANN|SONST|SOLANGE|FÜR|BIS|WIEDERHOLE|GIB|ENDE|FUNKTION|ALGORITHMUS|"
                           r"PROZEDUR|IF|THEN|ELSE|WHILE|FOR|RETURN|END|DO|REPEAT|UNTIL)\b")
_CODE_END = re.compile(r"(?:[;{}]|\)\s*:|\)|\*/|:)\s*$")
# A call, but not a gendered or plural ending in brackets ("Teilnehmer(innen)", "creator(s)").
_CODE_SHAPE = re.compile(r"\w[\w.\]\[]*\s*(?:[+\-*/%|&^]?=|==|!=|<=|>=|->|=>|:=|\+\+|--|<<|>>)|"
                         r"\w\((?![a-zäöüß]{1,8}\))[^()]*\)|\w\.\w+\(|\w\[[^\]]*\]")
_SENTENCE = re.compile(r"[.!?]\s+[A-ZÄÖÜ]")


def indent_width(line: str) -> int:
    """Columns of leading spaces (a tab reaches the next multiple of four, a no-break or typographic space is one)."""
    width = 0
    for char in line:
        if char == "\t":
            width += TAB_WIDTH - width % TAB_WIDTH
        elif char in " \u00a0\u202f" or "\u2000" <= char <= "\u200b":
            width += 1
        else:
            break
    return width


def looks_like_code(line: str) -> bool:
    """Whether one line reads as program code (or pseudocode) rather than prose."""
    text = line.strip()
    if not text or len(text) > 200:
        return False
    if _SENTENCE.search(text) or (text.endswith(".") and len(text.split()) > 3):
        return False  # sentences
    if _CODE_START.match(text) or _PSEUDO_START.match(text):
        return True
    end = bool(_CODE_END.search(text))
    shape = bool(_CODE_SHAPE.search(text))
    # ":" or ")" at the end alone is also a heading ("Beispiel:") or a remark "(siehe oben)": code needs a shape.
    return shape and (end or len(text.split()) <= 6) or text.endswith(("{", "}"))


def listing_lines(lines: Sequence[str]) -> set[int]:
    """Indices of the lines that belong to a code listing, whose leading indentation is meaningful."""
    indents = [indent_width(line) if line.strip() else 0 for line in lines]
    if max(indents, default=0) < _MIN_INDENT:  # nothing is laid out: prose (the common case, decided cheaply)
        return set()
    code = [looks_like_code(line) for line in lines]
    # The line after "if x:" or "{", indented deeper, is code whatever it says (a comment, a plain expression).
    for i in range(1, len(lines)):
        before = lines[i - 1].rstrip()
        if code[i - 1] and before.endswith((":", "{")) and lines[i].strip() \
                and indent_width(lines[i]) > indent_width(lines[i - 1]):
            code[i] = True
    member = [bool(line.strip()) and (indents[i] > 0 or code[i]) for i, line in enumerate(lines)]
    found: set[int] = set()
    i = 0
    while i < len(lines):
        if not member[i]:
            i += 1
            continue
        end = i
        # A blank line inside a listing (between two functions) keeps it open when indented code follows.
        while end < len(lines) and (member[end] or (not lines[end].strip() and end + 1 < len(lines)
                                                    and member[end + 1] and indents[end + 1] > 0)):
            end += 1
        # It begins and ends with a line of code: indented prose around a listing is prose.
        block = [k for k in range(i, end) if lines[k].strip()]
        coded = [k for k in block if code[k]]
        block = [k for k in block if coded and coded[0] <= k <= coded[-1]]
        levels = {indents[k] for k in block}
        if len(levels) >= 2 and max(levels) >= _MIN_INDENT and 3 * len(coded) >= len(block):
            found.update(range(block[0], block[-1] + 1))
        i = end
    return found
