"""HTML slide decks read as slides: remark/xaringan (Markdown in ``<textarea id="source">``) and reveal.js.

Each slide becomes one section numbered as the deck counts it (``Locator.SLIDE``), its first heading as its
heading path; speaker notes (remark's ``???``, reveal's ``<aside class="notes">`` and Markdown ``Note:``) become
"notes" sections of the same slide, as in PowerPoint files. Class markup (``.pull-left[ … ]``), slide properties
(``class: center, middle``), layout templates, CSS and scripts are not text a student sees, so they are dropped.
"""
from __future__ import annotations

import html
import re
from typing import Any

import re2

from retrieval.loaders.cleanup import normalise_text
from retrieval.loaders.html import walk_sections
from retrieval.loaders.markup import strip_inline_markdown
from retrieval.types import Section

_REMARK_SLIDE = re.compile(r"^---[ \t]*$", re.MULTILINE)
_REMARK_STEP = re.compile(r"^--[ \t]*$", re.MULTILINE)
_REMARK_NOTES = re.compile(r"^\?\?\?[ \t]*$", re.MULTILINE)
_REMARK_PROPERTY = re.compile(r"^(name|class|layout|template|count|exclude|seal|background-[\w-]+):[ \t]*(.*)$")
_CLASS_OPEN = re.compile(r"\.[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*\[")
_BLOCK = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_IMG_ALT = re.compile(r"<img\b[^>]*?\balt=[\"']([^\"']+)[\"'][^>]*>", re.IGNORECASE)
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_SEPARATOR = re2.compile(r"(?m)^\r?\n?---\r?\n?$", _RE2_OPTIONS)  # reveal.js's default slide separator
_HEADING = re.compile(r"^[ \t]*(#{1,6})[ \t]+([^\n]*)$", re.MULTILINE)  # closing #s: stripped in code
_FENCE = re.compile(r"^[ \t]*(```+|~~~+).*$", re.MULTILINE)
_TEMPLATE = re.compile(r"\{\{\s*content\s*\}\}")
_MD_NOTES = re.compile(r"^[ \t]*Notes?:", re.MULTILINE)


def deck_sections(soup: Any) -> list[Section]:
    """One section per slide (plus notes) when the page is a remark or reveal.js deck, else ``[]``."""
    source = soup.find("textarea", id="source")
    if source is not None:
        return remark_sections(source.get_text())
    slides = soup.select_one(".reveal .slides")
    if slides is not None:
        return reveal_sections(slides)
    return []


def strip_remark_classes(text: str) -> str:
    """Drop remark's class markup (``.pull-left[``, ``.red[…]``) and its closing bracket, keeping what is inside."""
    out: list[str] = []
    stack: list[bool] = []  # for each open bracket: whether it opened class markup
    i = 0
    while i < len(text):
        char = text[i]
        if char == "." and (i == 0 or not text[i - 1].isalnum()):
            match = _CLASS_OPEN.match(text, i)
            if match:
                stack.append(True)
                i = match.end()
                continue
        if char == "[":
            stack.append(False)
        elif char == "]" and stack and stack.pop():
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _heading_text(match: re.Match[str]) -> str:
    """A Markdown heading's text without its closing ``#`` marks."""
    return match.group(2).rstrip(" \t#")


def markdown_slide(markdown: str) -> tuple[str, str]:
    """The visible text of one Markdown slide and its title (its first heading, or "")."""
    text = _HTML_COMMENT.sub(" ", _BLOCK.sub(" ", html.unescape(markdown)))
    text = _IMG_ALT.sub(lambda m: "\n" + m.group(1) + "\n", text)
    text = _TEMPLATE.sub("", _FENCE.sub("", strip_remark_classes(text)))
    heading = _HEADING.search(text)
    title = normalise_text(strip_inline_markdown(_heading_text(heading))) if heading else ""
    body = normalise_text(strip_inline_markdown(_HEADING.sub(_heading_text, text)))
    return body, title


def _slide(sections: list[Section], number: int, text: str, title: str, notes: str) -> None:
    """Append a slide's section and its notes (an empty slide, such as a picture without alt text, adds nothing)."""
    heading = (title,) if title else ()
    if text:
        sections.append(Section(text=text, position=number, heading_path=heading))
    if notes:
        sections.append(Section(text=notes, position=number, heading_path=heading, kind="notes"))


def _split_notes(marker: re.Pattern[str], markdown: str) -> tuple[str, str]:
    """A slide's Markdown before the speaker-notes marker, and the notes after it ("" without notes)."""
    parts = marker.split(markdown, maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def remark_sections(markdown: str) -> list[Section]:
    """Sections of a remark/xaringan deck; a slide built up in steps (``--``) counts as its last, complete step."""
    sections: list[Section] = []
    number = 0
    for raw in _REMARK_SLIDE.split(markdown.replace("\r\n", "\n")):
        lines = raw.strip("\n").split("\n")
        properties: dict[str, str] = {}
        while lines and (match := _REMARK_PROPERTY.match(lines[0].strip())):
            properties[match.group(1)] = match.group(2).strip().lower()
            lines.pop(0)
        if properties.get("layout") == "true" or properties.get("exclude") == "true":
            continue  # a template for later slides, or a slide the deck does not show
        body, notes = _split_notes(_REMARK_NOTES, "\n".join(lines))
        number += 1 + len(_REMARK_STEP.findall(body))
        text, title = markdown_slide(_REMARK_STEP.sub("", body))
        _slide(sections, number, text, title, markdown_slide(notes)[0] if notes else "")
    return sections


def _reveal_slides(container: Any) -> list[Any]:
    """The slides of a reveal.js deck in order: top-level sections, or their child sections (vertical slides)."""
    slides: list[Any] = []
    for section in container.find_all("section", recursive=False):
        children = section.find_all("section", recursive=False)
        slides.extend(children if children else [section])
    return slides


def _markdown_source(slide: Any) -> str | None:
    """The Markdown of a ``<section data-markdown>`` slide (inline in a textarea or script template)."""
    if not slide.has_attr("data-markdown"):
        return None
    template = slide.find(["textarea", "script"])
    return template.get_text() if template is not None else slide.get_text()


def _separator(pattern: str | None) -> Any:
    """The deck's own slide separator, compiled on RE2: the file is untrusted, so its pattern must run in linear
    time (a pattern RE2 refuses falls back to the default separator)."""
    if not pattern:
        return None
    try:
        return re2.compile("(?m)" + pattern, _RE2_OPTIONS)
    except re2.error:
        return None


def reveal_sections(container: Any) -> list[Section]:
    """Sections of a reveal.js deck: one per slide, vertical slides counted in reading order."""
    sections: list[Section] = []
    number = 0
    for slide in _reveal_slides(container):
        markdown = _markdown_source(slide)
        if markdown is not None:
            separator = _separator(slide.get("data-separator")) or _SEPARATOR
            vertical = _separator(slide.get("data-separator-vertical"))
            parts = separator.split(markdown)
            if vertical is not None:
                parts = [p for part in parts for p in vertical.split(part)]
            for part in parts:
                body, notes = _split_notes(_MD_NOTES, part)
                number += 1
                text, title = markdown_slide(body)
                _slide(sections, number, text, title, markdown_slide(notes)[0] if notes else "")
            continue
        number += 1
        notes = " ".join(aside.extract().get_text(" ") for aside in slide.find_all("aside", class_="notes"))
        walked = walk_sections(slide)
        title = next((s.heading_path[0] for s in walked if s.heading_path), "")
        lines: list[str] = []
        for part in walked:
            heading = part.heading_path[-1] if part.heading_path else ""
            if heading and heading not in lines and part.kind != "title":
                lines.append(heading)
            lines.append(part.text)
        _slide(sections, number, normalise_text("\n".join(lines)), title, normalise_text(notes))
    return sections


def load_html_sections(text: str) -> tuple[list[Section], str | None]:
    """Return sections cut at headings (one per slide, numbered, for remark and reveal.js decks) and the <title>."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text().split()) if title_tag else None
    slides = deck_sections(soup)
    if slides:
        return slides, title or None
    return walk_sections(soup.body if soup.body is not None else soup), title or None
