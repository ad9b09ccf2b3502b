"""Structure-aware chunking: sections are packed into token-budgeted chunks that respect headings and pages."""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from itertools import groupby

from retrieval.language import detect_language
from retrieval.listings import indent_width, listing_lines
from retrieval.types import Chunk, ChunkKind, Document, Locator, Section

_TOKEN = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[\"'(\[A-ZÄÖÜ0-9])")
_TITLE_TOKENS = 12  # a page or slide this short is a title ("Kapitel 3: Vererbung"), not a passage


@dataclass(frozen=True)
class ChunkingConfig:
    """Chunk size in whitespace tokens (about words), overlap when a long text is cut, and merging."""

    max_tokens: int = 200
    overlap_tokens: int = 40
    min_tokens: int = 50  # below this, a chunk continues across a heading boundary (never across a page or slide)

    def describe(self) -> dict[str, int]:
        """The settings as plain values for reports."""
        return {"max_tokens": self.max_tokens, "overlap_tokens": self.overlap_tokens,
                "min_tokens": self.min_tokens}


def count_tokens(text: str) -> int:
    """Whitespace tokens: close to words, cheap, and stable across tokenizers."""
    return len(_TOKEN.findall(text))


def chunk_id_for(document_id: str, text: str, position: int | None, heading_path: tuple[str, ...]) -> str:
    """A content hash: the same text at the same place keeps its id, so it is not embedded again."""
    key = "\x1f".join([document_id, str(position), "\x1e".join(heading_path), text])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass
class _Unit:
    """A sentence (or a cut piece of a very long one) with the section it came from."""

    text: str
    tokens: int
    section: Section
    newline_before: bool


def _units(section: Section, max_tokens: int) -> list[_Unit]:
    """Split a section into sentences, cutting any sentence longer than the budget into pieces.

    A line of a code listing is one unit (not split at ". X") and keeps its leading indentation.
    """
    units: list[_Unit] = []
    lines = section.text.split("\n")
    listing = listing_lines(lines)
    for line_no, line in enumerate(lines):
        if not line.strip():
            continue
        code = line_no in listing
        indent = " " * indent_width(line) if code else ""
        for sent_no, sentence in enumerate([line.strip()] if code else _SENTENCE_END.split(line.strip())):
            words = sentence.split()
            for start in range(0, len(words), max_tokens):
                piece = words[start:start + max_tokens]
                first = sent_no == 0 and start == 0
                units.append(_Unit(indent * first + " ".join(piece), len(piece), section,
                                   newline_before=line_no > 0 and first))
    return units


def _join(units: list[_Unit]) -> str:
    """Rebuild text from units, keeping line breaks between lines and sections."""
    parts: list[str] = []
    for i, unit in enumerate(units):
        if i > 0:
            if unit.section is not units[i - 1].section:
                parts.append("\n\n")
            else:
                parts.append("\n" if unit.newline_before else " ")
        parts.append(unit.text)
    return "".join(parts)


def _boundary(a: Section, b: Section) -> bool:
    """A new page/slide or a new heading is a natural place to start a chunk."""
    return a.position != b.position or a.heading_path != b.heading_path


def carry_titles(sections: tuple[Section, ...]) -> list[Section]:
    """A title-only page or slide becomes the heading of the next one instead of a chunk of its own.

    Merged into the next page's chunk, it would make that chunk start on the title's page, and the citation would
    send the student to a page that shows nothing but the title; as a heading it still gives the next page its
    context (headings are indexed with every chunk), and the citation names the page where the text stands.
    """
    pages = [list(group) for _, group in groupby(sections, key=lambda s: s.position)]
    result: list[Section] = []
    carried: tuple[str, ...] = ()
    for number, page in enumerate(pages):
        if carried:
            page = [dataclasses.replace(s, heading_path=_merge_path(carried, s.heading_path)) for s in page]
            carried = ()
        tokens = sum(count_tokens(s.text) for s in page)
        if page[0].position is not None and 0 < tokens <= _TITLE_TOKENS and number + 1 < len(pages) \
                and pages[number + 1][0].position is not None:
            title = " ".join(" ".join(s.text.split()) for s in page)
            carried = _merge_path(page[0].heading_path, (title,))
            continue
        result.extend(page)
    return result


def _merge_path(outer: tuple[str, ...], inner: tuple[str, ...]) -> tuple[str, ...]:
    """``outer`` followed by ``inner``, without repeating a heading that ends one and starts the other."""
    if outer and inner and outer[-1] == inner[0]:
        return outer + inner[1:]
    return outer + inner


def chunk_document(document: Document, config: ChunkingConfig | None = None,
                   kind: ChunkKind = ChunkKind.MATERIAL) -> list[Chunk]:
    """Cut a document into chunks of at most ``max_tokens`` tokens with positions and heading paths."""
    config = config or ChunkingConfig()
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    paged = document.locator in (Locator.PAGE, Locator.SLIDE)
    for section in (carry_titles(document.sections) if paged else document.sections):
        units = _units(section, config.max_tokens)
        if not units:
            continue
        # A page or slide always starts a chunk (a citation names the page where its text stands: merged into the
        # next page, a short page's chunk would send the student to the wrong one); headings only past min_tokens.
        new_page = paged and current and current[-1].section.position != section.position
        if current and (new_page or (size >= config.min_tokens and _boundary(current[-1].section, section))):
            groups.append(current)
            current, size = [], 0
        for unit in units:
            if current and size + unit.tokens > config.max_tokens:
                groups.append(current)
                current = _overlap(current, config.overlap_tokens, unit.section)
                size = sum(u.tokens for u in current)
            current.append(unit)
            size += unit.tokens
    if current:
        groups.append(current)
    return _to_chunks(document, groups, kind)


def _overlap(previous: list[_Unit], overlap_tokens: int, section: Section) -> list[_Unit]:
    """The trailing sentences of the previous chunk (same section only) that fit in the overlap."""
    carried: list[_Unit] = []
    total = 0
    for unit in reversed(previous):
        if unit.section is not section or total + unit.tokens > overlap_tokens:
            break
        carried.insert(0, unit)
        total += unit.tokens
    return carried


def _to_chunks(document: Document, groups: list[list[_Unit]], kind: ChunkKind) -> list[Chunk]:
    """Turn unit groups into Chunk objects with unique, content-derived ids."""
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for ordinal, group in enumerate(groups):
        text = _join(group)
        positions = [u.section.position for u in group if u.section.position is not None]
        first = group[0].section
        chunk_id = chunk_id_for(document.document_id, text, first.position, first.heading_path)
        suffix = 1
        while chunk_id in seen:  # identical text twice in one document (e.g. repeated slides)
            chunk_id = chunk_id_for(document.document_id, f"{text}\x00{suffix}", first.position,
                                    first.heading_path)
            suffix += 1
        seen.add(chunk_id)
        chunks.append(Chunk(
            chunk_id=chunk_id, document_id=document.document_id, document_title=document.title, text=text,
            ordinal=ordinal, position=min(positions) if positions else None,
            position_end=max(positions) if positions else None, locator=document.locator,
            heading_path=first.heading_path, language=detect_language(text, document.language), kind=kind,
            token_count=sum(u.tokens for u in group)))
    return chunks


def chunk_faq(faq_id: str, question: str, answer: str, title: str = "FAQ") -> Chunk:
    """A teacher-written FAQ entry is one chunk (never split: the question and answer belong together)."""
    text = f"{question.strip()}\n{answer.strip()}"
    return Chunk(chunk_id=chunk_id_for(faq_id, text, None, ()), document_id=faq_id, document_title=title,
                 text=text, language=detect_language(text), kind=ChunkKind.FAQ, token_count=count_tokens(text))
