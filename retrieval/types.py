"""Core data types and protocols of the retrieval library.

Everything that answers questions (prompting, chat, the teacher pages) reads these types, so they change
only by adding optional fields. The library is pure: no Flask, no ``lti_tool``, no ``course_bots`` imports.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
"""A 2-D float32 array, one row per text (L2-normalised by every embedder)."""


class Locator(str, enum.Enum):
    """What a position number in a document counts."""

    PAGE = "page"  # PDF pages, 1-based
    SLIDE = "slide"  # PPTX slides, 1-based
    SECTION = "section"  # DOCX/HTML/Markdown/text: no pages, the heading path locates the text


class ChunkKind(str, enum.Enum):
    """Where a chunk's text comes from."""

    MATERIAL = "material"  # an uploaded document
    FAQ = "faq"  # an entry the teacher wrote (retrieval boosts these)


@dataclass(frozen=True)
class Section:
    """A contiguous piece of a document's text with its position (one page, one slide, one heading's body)."""

    text: str
    position: int | None = None  # page or slide number (1-based) when the document has them
    heading_path: tuple[str, ...] = ()  # e.g. ("2 Methods", "2.1 Data")
    kind: str = "body"  # "body", "title", "table", "notes" (speaker notes)


@dataclass(frozen=True)
class Document:
    """A loaded document: its text as ordered sections with positions, ready for chunking."""

    document_id: str
    title: str
    sections: tuple[Section, ...]
    locator: Locator = Locator.SECTION
    media_type: str = "text/plain"
    language: str | None = None  # ISO 639-1 ("de", "en") when detected
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """All section texts joined by blank lines."""
        return "\n\n".join(s.text for s in self.sections if s.text)

    @property
    def page_count(self) -> int:
        """Number of distinct pages/slides (0 when the document has no positions)."""
        return len({s.position for s in self.sections if s.position is not None})


@dataclass(frozen=True)
class Chunk:
    """A retrievable unit of text: a part of one document with the position a citation points to."""

    chunk_id: str
    document_id: str
    document_title: str
    text: str
    ordinal: int = 0  # order of the chunk inside its document
    position: int | None = None  # first page/slide the chunk covers
    position_end: int | None = None  # last page/slide (same as position for one-page chunks)
    locator: Locator = Locator.SECTION
    heading_path: tuple[str, ...] = ()
    language: str | None = None
    kind: ChunkKind = ChunkKind.MATERIAL
    token_count: int = 0

    @property
    def citation_label(self) -> str:
        """A short human label such as ``"Lecture 3.pdf, page 4"`` or ``"Notes.docx, 2 Methods"``."""
        if self.position is not None and self.locator in (Locator.PAGE, Locator.SLIDE):
            where = f"{self.locator.value} {self.position}"
            if self.position_end is not None and self.position_end != self.position:
                where = f"{self.locator.value}s {self.position}–{self.position_end}"
            return f"{self.document_title}, {where}"
        if self.heading_path:
            return f"{self.document_title}, {self.heading_path[-1]}"
        return self.document_title


@dataclass(frozen=True)
class SearchHit:
    """One search result: a chunk, a calibrated score in [0, 1] and the per-component scores behind it."""

    chunk: Chunk
    score: float  # calibrated: comparable across queries and courses; thresholds apply to this
    components: dict[str, float] = field(default_factory=dict)  # e.g. {"bm25": 0.7, "dense": 0.55}
    rank: int = 0  # 1-based rank in the result list


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors; queries and passages may get different prefixes."""

    @property
    def model_id(self) -> str:
        """Identifies the model (stored with every vector; a change means re-indexing)."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> Vector:
        """Embed document passages (batched), one row per text."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> Vector:
        """Embed search queries (batched), one row per text."""
        ...


@runtime_checkable
class Index(Protocol):
    """A searchable collection of one course's chunks."""

    def add(self, chunks: Sequence[Chunk], vectors: Vector | None = None) -> None:
        """Add chunks (with their passage vectors when the index is dense or hybrid)."""
        ...

    def remove_document(self, document_id: str) -> None:
        """Remove every chunk of one document."""
        ...

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """Return up to ``k`` hits, best first."""
        ...

    def __len__(self) -> int:
        """Number of chunks in the index."""
        ...
