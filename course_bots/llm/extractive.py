"""Answers without a language model: the best passages as excerpts under their file and page, said plainly.

Each passage becomes a heading (``photosynthesis.pdf, Seite 1 [1]``) over its best sentences; code in the passage
(two or more code-like lines: slide code, listings) stays a code block with its line breaks, lists stay lists.
"""
from __future__ import annotations

import logging
import re
import uuid
from typing import Iterator, Sequence

from retrieval.language import detect_language
from retrieval.sentences import split_sentences

from .base import (ChatBackend, DoneEvent, ErrorEvent, Event, GenerationParams, Health, Message, Passage, StatusEvent,
                   TokenEvent, Usage)
from .sources import code_fence, escape_markdown, keeps_break, parse_source_blocks, passage_blocks, reindent
from .tokens import estimate_messages, estimate_tokens

logger = logging.getLogger(__name__)

NOTICE = {
    "en": "No language model is answering right now, so here is what the course materials say about the question, "
          "quoted word for word:",
    "de": "Gerade antwortet kein Sprachmodell. Das steht in den Kursmaterialien zu dieser Frage, wörtlich zitiert:",
}
NOTHING = {
    "en": "No language model is answering right now, and no passage of the course materials matches the question.",
    "de": "Gerade antwortet kein Sprachmodell, und keine Stelle der Kursmaterialien passt zur Frage.",
}
_WORD = re.compile(r"\w+", re.UNICODE)


def fixed_text_language(text: str) -> str:
    """The language of our fixed texts for ``text``: ``"de"`` when retrieval's detector says German, else ``"en"``."""
    return "de" if detect_language(text) == "de" else "en"


class ExtractiveBackend:
    """Quotes passages from the prompt's sources; the fallback when no model is configured or reachable."""

    name = "extractive"

    def __init__(self, max_passages: int = 3, max_chars: int = 400) -> None:
        self.max_passages = max_passages
        self.max_chars = max_chars

    def stream(self, messages: Sequence[Message], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        """Yield the quoted answer word by word, like a model would stream it."""
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        passages = list(params.sources) or parse_source_blocks(question)
        language = params.language or fixed_text_language(_strip_blocks(question))
        text = self.answer(_strip_blocks(question), passages, language)
        pieces = re.findall(r"\S+\s*|\s+", text)
        for piece in pieces:
            yield TokenEvent(piece)
        yield DoneEvent("stop", Usage(estimate_messages(messages), estimate_tokens(text)))

    def answer(self, question: str, passages: Sequence[Passage], language: str = "en") -> str:
        """The full extractive answer: a notice, then per passage a heading (file, page, ``[n]``) and its excerpt."""
        lang = language if language in NOTICE else "en"
        if not passages:
            return NOTHING[lang]
        terms = {w.lower() for w in _WORD.findall(question) if len(w) > 2}
        parts = [NOTICE[lang]]
        matching = [bool(terms & {w.lower() for w in _WORD.findall(p.text)}) for p in passages]
        # The best passage, then those sharing a word with the question (all, when none shares one).
        shown = [p for i, p in enumerate(passages) if not i or matching[i] or not any(matching)]
        for passage in shown[: self.max_passages]:
            parts.append(f"### {escape_markdown(' '.join(passage.label.split()))} [{passage.number}]")
            parts.append(self._excerpt_markdown(passage.text, terms))
        return "\n\n".join(part for part in parts if part).rstrip()

    def _excerpt_markdown(self, text: str, terms: set[str]) -> str:
        """The passage's best sentences as a paragraph, and its code (at most 15 lines a block) as code blocks."""
        blocks = passage_blocks(text)
        prose = "\n".join("\n".join(lines) for kind, lines in blocks if kind == "text")
        out: list[str] = []
        excerpt = self._best_excerpt(prose, terms) if prose.strip() else ""
        if excerpt:
            out.append("\\\n".join(escape_markdown(line) for line in excerpt.split("\n")))
        for kind, lines in blocks:
            if kind == "code":
                code = [line for line in lines if line.strip()]
                out.append(code_fence(reindent(code[:15] + (["…"] if len(code) > 15 else []))))
        return "\n\n".join(out)

    def _best_excerpt(self, text: str, terms: set[str]) -> str:
        """The sentences sharing most words with the question, in document order, within ``max_chars``."""
        lines: list[str] = []  # the text's own lines (titles, full lines of a slide); wrapped lines joined again
        for raw in (" ".join(line.split()) for line in text.split("\n")):
            if raw and lines and not keeps_break(lines[-1], raw):
                lines[-1] += " " + raw
            elif raw:
                lines.append(raw)
        units = [(n, s.strip()) for n, line in enumerate(lines) for s in split_sentences(line) if s.strip()]
        sentences = [s for _, s in units]
        if not sentences:
            return ""
        overlap = [len(terms & {w.lower() for w in _WORD.findall(s)}) for s in sentences]
        ranked = sorted((i for i in range(len(sentences)) if overlap[i]), key=lambda i: (-overlap[i], i))
        chosen: list[int] = []
        used = 0
        # Matching sentences first; with no match at all, the passage's opening stands for it.
        for index in ranked or range(len(sentences)):
            if chosen and used + len(sentences[index]) > self.max_chars:
                continue
            chosen.append(index)
            used += len(sentences[index]) + 1
        order = sorted(chosen)
        excerpt = "".join(("\n" if units[i][0] != units[order[k - 1]][0] else " ") * bool(k) + sentences[i]
                          for k, i in enumerate(order))
        return excerpt if len(excerpt) <= self.max_chars else excerpt[: self.max_chars - 1].rstrip() + "…"

    def cancel(self, request_id: str) -> None:
        """Nothing runs in the background: closing the stream is enough."""

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """A conservative estimate (no tokenizer involved)."""
        return estimate_messages(messages)

    def health(self) -> Health:
        """Always available."""
        return Health(ok=True, loaded=True, detail="extractive")


def _strip_blocks(text: str) -> str:
    """The user message without its source blocks (the question alone)."""
    return re.sub(r"<source\b.*?</source>", " ", text, flags=re.S).strip()


class FallbackBackend:
    """Uses ``primary``; when it is unavailable before any answer text, answers with ``fallback`` instead."""

    def __init__(self, primary: ChatBackend, fallback: ChatBackend | None = None) -> None:
        self.primary = primary
        self.fallback: ChatBackend = fallback or ExtractiveBackend()
        self.name = f"{primary.name}+fallback"

    def stream(self, messages: Sequence[Message], params: GenerationParams,
               request_id: str | None = None) -> Iterator[Event]:
        """Stream from the primary backend, switching to the fallback on ``unavailable``/``timeout`` before text."""
        rid = request_id or uuid.uuid4().hex
        produced = False
        for event in self.primary.stream(messages, params, rid):
            if isinstance(event, ErrorEvent) and event.code in ("unavailable", "timeout") and not produced:
                logger.warning("Backend %s failed (%s); answering extractively", self.primary.name, event.code)
                yield StatusEvent("fallback")
                yield from self.fallback.stream(messages, params, rid)
                return
            produced = produced or isinstance(event, TokenEvent)
            yield event

    def cancel(self, request_id: str) -> None:
        """Cancel on the primary backend."""
        self.primary.cancel(request_id)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The primary backend's count."""
        return self.primary.count_tokens(messages)

    def health(self) -> Health:
        """The primary backend's health (the fallback is always there)."""
        return self.primary.health()
