"""Markdown and plain-text loaders: headings become heading paths, markup is reduced to readable text."""
from __future__ import annotations

import re

from retrieval.loaders.cleanup import normalise_text
from retrieval.types import Section

# Closing hashes and spaces are stripped in code: three optional runs in a row would backtrack cubically.
_ATX = re.compile(r"^(#{1,6})\s+(.*)")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_FENCE = re.compile(r"^\s*(```+|~~~+)")
_FRONT_MATTER_TITLE = re.compile(r"^title:\s*(.*)$", re.MULTILINE)  # quotes stripped in code (linear)
_ATTRS = re.compile(r"\s*\{(?:[#.][^}]*|\w+=[^}]*)\}")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_EMPHASIS = re.compile(r"(\*\*|\*|~~)(?=\S)(.+?)(?<=\S)\1|(?<![\w\\])(__|_)(?=\S)(.+?)(?<=\S)\3(?!\w)")
_INLINE_CODE = re.compile(r"`([^`]+)`")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_DIV_FENCE = re.compile(r"^\s*:{3,}.*$", re.MULTILINE)  # Pandoc fenced divs (::: notes)
_LIST_MARK = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>\s?", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$", re.MULTILINE)


def strip_inline_markdown(text: str) -> str:
    """Reduce Markdown markup to the words a reader sees (links keep their text, images their alt text)."""
    text = _HTML_COMMENT.sub(" ", text)
    text = _DIV_FENCE.sub("", text)
    text = _RULE.sub("", text)
    text = _TABLE_SEP.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _ATTRS.sub("", text)
    text = _INLINE_CODE.sub(r"\1", text)
    for _ in range(2):  # nested emphasis such as ***x***
        text = _EMPHASIS.sub(lambda m: m.group(2) if m.group(1) else m.group(4), text)
    text = _HTML_TAG.sub(" ", text)
    text = _QUOTE.sub("", text)
    text = _LIST_MARK.sub(r"\1", text)
    # Markdown tables: keep the cells as "a | b" rows.
    text = "\n".join(line.strip().strip("|").strip() if line.lstrip().startswith("|") else line
                     for line in text.split("\n"))
    return text


def split_front_matter(text: str) -> tuple[str, str | None]:
    """Remove a leading YAML front-matter block and return (body, title from it)."""
    if not text.startswith("---"):
        return text, None
    end = text.find("\n---", 3)
    if end < 0:
        return text, None
    block = text[3:end]
    match = _FRONT_MATTER_TITLE.search(block)
    body = text[end + 4:].split("\n", 1)
    return (body[1] if len(body) > 1 else ""), (_unquoted(match.group(1)) if match else None)


def _unquoted(value: str) -> str:
    value = value.rstrip()
    value = value[1:] if value[:1] in ("'", '"') else value
    return (value[:-1] if value[-1:] in ("'", '"') else value).strip()


def load_markdown_sections(text: str) -> tuple[list[Section], str | None]:
    """Return one section per heading body; the title is the front matter's or the first level-1 heading."""
    body, title = split_front_matter(text.replace("\r\n", "\n"))
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buffer: list[str] = []
    in_fence = False
    heading_has_text = False

    def flush() -> None:
        nonlocal heading_has_text
        cleaned = normalise_text(strip_inline_markdown("\n".join(buffer)))
        current = tuple(t for _, t in path)
        if cleaned:
            sections.append(Section(text=cleaned, heading_path=current))
        elif current and not heading_has_text:  # a heading without body is still text
            sections.append(Section(text=current[-1], heading_path=current, kind="title"))
        heading_has_text = True
        buffer.clear()

    def open_heading(level: int, heading: str) -> None:
        nonlocal path, title, heading_has_text
        flush()
        heading_has_text = False
        heading = normalise_text(strip_inline_markdown(_ATTRS.sub("", heading)))
        path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, heading)]
        if title is None and level == 1:
            title = heading

    for line in body.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _ATX.match(line)
        if match:
            open_heading(len(match.group(1)), match.group(2).rstrip().rstrip("#").rstrip())
            continue
        setext = None if in_fence else _SETEXT.match(line)
        if setext and buffer and buffer[-1].strip() and not _LIST_MARK.match(buffer[-1]):
            heading = buffer.pop()
            open_heading(1 if setext.group(1)[0] == "=" else 2, heading)
            continue
        buffer.append(line)
    flush()
    return sections, title


def load_text_sections(text: str) -> list[Section]:
    """Plain text has no structure beyond paragraphs: one section, the chunker splits it."""
    cleaned = normalise_text(text)
    return [Section(text=cleaned)] if cleaned else []
