"""Structure-aware chunking: sections are packed into token-budgeted chunks that respect headings and pages."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from retrieval.language import detect_language
from retrieval.types import Chunk, ChunkKind, Document, Section

_TOKEN = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[\"'(\[A-ZÄÖÜ0-9])")


@dataclass(frozen=True)
class ChunkingConfig:
    """Chunk size in whitespace tokens (about words), overlap when a long text is cut, and merging."""

    max_tokens: int = 200
    overlap_tokens: int = 40
    min_tokens: int = 50  # below this, a chunk continues across a page or heading boundary

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
    """Split a section into sentences, cutting any sentence longer than the budget into pieces."""
    units: list[_Unit] = []
    for line_no, line in enumerate(section.text.split("\n")):
        if not line.strip():
            continue
        for sent_no, sentence in enumerate(_SENTENCE_END.split(line.strip())):
            words = sentence.split()
            for start in range(0, len(words), max_tokens):
                piece = words[start:start + max_tokens]
                units.append(_Unit(" ".join(piece), len(piece), section,
                                   newline_before=line_no > 0 and sent_no == 0 and start == 0))
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


def chunk_document(document: Document, config: ChunkingConfig | None = None,
                   kind: ChunkKind = ChunkKind.MATERIAL) -> list[Chunk]:
    """Cut a document into chunks of at most ``max_tokens`` tokens with positions and heading paths."""
    config = config or ChunkingConfig()
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    for section in document.sections:
        units = _units(section, config.max_tokens)
        if not units:
            continue
        if current and size >= config.min_tokens and _boundary(current[-1].section, section):
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
