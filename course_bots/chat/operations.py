"""One question, end to end: quota -> course search -> prompt (threshold refusal) -> backend stream -> storage.

The service yields API stream events ``(name, data)``: ``token`` (text, never HTML), ``status`` (queued with a
position, warming up), ``done`` (message id, sanitized HTML, citations) and ``error``. The question is stored
before answering (through the privacy issue's conversations service, which scrubs it), so it is kept even when
the answer fails; a question id the client already sent is never stored twice. Every backend's text passes
through an :class:`~course_bots.llm.echo_guard.EchoGuard`: an answer that repeats the teacher's prompt is cut
before the echo, never stored, and ends with an ``error`` event ``answer_withheld`` (the notice is stored).
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy import select

from course_bots.chat import conversations, prompting
from course_bots.chat.models import Message
from course_bots.materials import operations as materials
from course_bots.settings.operations import get_settings
from course_bots.llm.base import (ChatBackend, DoneEvent, ErrorEvent, GenerationParams, StatusEvent, TokenEvent)
from course_bots.llm.echo_guard import EchoGuard
from course_bots.llm.extractive import fixed_text_language as guess_language
from course_bots.settings.models import BotSettings
from course_bots.render import render_markdown, render_passage
from course_bots import backends, i18n
from lti_tool.context import SessionToken
from lti_tool.extensions import current_config, db
from retrieval.types import SearchHit

logger = logging.getLogger(__name__)

StreamEvent = tuple[str, dict[str, Any]]
Search = Callable[[int, str, int], Sequence[SearchHit]]


@dataclass(frozen=True)
class Question:
    """A question as the browser sends it: the client-generated id makes retries idempotent."""

    bot_id: int
    text: str
    client_id: str
    conversation_id: int | None = None


def default_search(bot_id: int, query: str, k: int) -> Sequence[SearchHit]:
    """The course's hybrid search over its materials and FAQ."""
    return list(materials.search_course(bot_id, query, k))


def would_answer(hits: Sequence[SearchHit]) -> bool:
    """Whether the chat would answer from these hits rather than refuse as not covered (no model is asked)."""
    return prompting.covers(hits, current_config().answer_score_threshold)


def stored_answer(question_id: int) -> Any:
    """The successful stored answer to a question, if any (a retry of an answered question gets it back)."""
    return db.session.scalars(select(Message).where(Message.reply_to_id == question_id, Message.status == "ok")
                              .order_by(Message.id.desc())).first()


def history(conversation_id: int, before_id: int, limit: int = 20) -> list[dict[str, str]]:
    """Earlier turns of a conversation (stored, scrubbed texts), oldest first."""
    query = (select(Message).where(Message.session_id == conversation_id, Message.id < before_id,
                                   Message.status == "ok").order_by(Message.id.desc()).limit(limit))
    return [{"role": m.role, "content": m.text} for m in reversed(list(db.session.scalars(query)))]


def citation_view(citation: dict[str, Any]) -> dict[str, Any]:
    """A stored citation for the page, with its quoted passage as sanitized HTML (code kept as code blocks)."""
    return dict(citation, quote_html=render_passage(str(citation.get("quote") or "")))


def done_payload(answer: Any, conversation_id: int) -> dict[str, Any]:
    """The ``done`` event's data for a stored answer."""
    citations = list(answer.citations or [])
    numbers = {int(c.get("number", 0)) for c in citations}
    return {"message_id": answer.id, "conversation_id": conversation_id,
            "html": render_markdown(answer.text, citations=numbers),
            "citations": [citation_view(c) for c in citations]}


@dataclass
class Writer:
    """Who writes an answer: the model's label as shown, and its kind (``openai``, ``local``, ``extractive``;
    ``fallback`` once the extractive fallback stands in for an unavailable model)."""

    label: str
    kind: str


@dataclass(frozen=True)
class Asked:
    """A stored question with what the view worked out for it once: the bot's settings and the answer's language."""

    question: Question
    question_id: int
    conversation_id: int
    settings: BotSettings
    language: str
    text: str  # the question as stored, scrubbed of personal data: what is searched and what a model is sent
    new: bool = False  # stored by this request: no answer to look up

    @property
    def new_conversation(self) -> bool:
        """Stored by this request in a conversation it started: there is no history to load."""
        return self.new and self.question.conversation_id is None


def settings_for(bot_id: int) -> BotSettings:
    """The bot's settings for reading (the defaults, unwritten, when no teacher saved any).

    The streamed answer uses them after the view has committed the question: a commit expires what the session
    holds, and by then the request's session may be gone, so :func:`record` detaches them before that commit
    (until then, other reads of the same settings in the request, such as the consent check's, find them loaded).
    """
    return get_settings(bot_id)


def _detach(settings: BotSettings) -> None:
    """Take the settings out of the session: the answer reads them after commits, without the session."""
    if settings in db.session:
        db.session.expunge(settings)


def commit_keeping() -> None:
    """Commit without expiring what the session holds: the answer's own rows are read back from memory afterwards
    (its ``done`` event, the usage meter, the quota), not reloaded with one query each."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def page_language(session: SessionToken) -> str:
    """The language of the student's page (``de-DE`` -> ``de``), for the chat's own refusals such as the quota's."""
    return session.locale.split("-")[0].split("_")[0] if session.locale else "en"


def answer_language(settings: BotSettings, text: str) -> str:
    """The language of the answer: the one the teacher fixed, else the question's."""
    return settings.answer_language if settings.answer_language in ("de", "en") else guess_language(text)


def record(session: SessionToken, question: Question, settings: BotSettings) -> Asked:
    """Store the question (scrubbed, once per client id) before answering; raises ``ConversationError``."""
    stored, new = conversations.store_question(session, question.conversation_id, question.client_id, question.text)
    _detach(settings)
    return Asked(question, stored.id, stored.session_id, settings, answer_language(settings, question.text),
                 stored.text, new=new)


def answer(session: SessionToken, asked: Asked, *, search: Search | None = None,
           backend: ChatBackend | None = None, commit: Callable[[], None] | None = None) -> Iterator[StreamEvent]:
    """Answer a question :func:`record` stored as a stream of API events; ``commit`` is the view's commit."""
    commit = commit or commit_keeping
    search = search or default_search
    question, settings, language = asked.question, asked.settings, asked.language
    conversation_id, question_id = asked.conversation_id, asked.question_id
    previous = None if asked.new else stored_answer(question_id)
    if previous is not None:
        yield "done", done_payload(previous, conversation_id)  # a retry of an answered question
        return
    started = time.monotonic()
    config = current_config()
    entry = backends.entry_for(config, settings.model_key)
    try:
        yield "status", {"state": "started", "conversation_id": conversation_id, "question_id": question_id}
        if not materials.search_ready():  # the first question after a cold start loads the model: say so first
            yield "status", {"state": "preparing", "conversation_id": conversation_id}
    except GeneratorExit:  # the student left before the search began
        _record_cancelled(session, question_id, commit)
        raise
    try:
        hits = search(question.bot_id, asked.text, 8)
        materials.mark_search_ready()
        prompt_settings = prompting.PromptSettings(
            system_prompt=_system_prompt(settings), context_window=entry.context_window,
            max_new_tokens=min(settings.max_answer_tokens, entry.max_answer_tokens),
            min_score=config.answer_score_threshold, language=language, label_language=page_language(session))
        earlier = [] if asked.new_conversation else history(conversation_id, question_id)
        assembly = prompting.assemble(asked.text, hits, earlier, prompt_settings)
    except Exception:
        logger.exception("Preparing the answer failed for bot %s", question.bot_id)
        conversations.record_failure(session, question_id, "internal")
        commit()
        yield "error", {"code": "internal", "message": "The answer could not be prepared.",
                        "conversation_id": conversation_id}
        return
    if not assembly.covered:
        text = assembly.refusal or prompting.not_covered_message(language)
        if settings.uncovered_behaviour == "refuse_suggest_teacher":
            text += " " + i18n.text("chat_uncovered_suffix", language)
        stored = conversations.record_answer(session, question_id, text, citations=[], confidence=0.0,
                                             model_id="refusal", answer_kind="refusal", latency_ms=_ms(started))
        commit()  # stored before it is sent: a student who leaves now finds the answer when they come back
        yield "token", {"text": text}
        yield "done", done_payload(stored, conversation_id)
        return
    # Nothing is pending: end the read transaction, so that a streaming answer holds no database connection for its
    # whole length (300 open streams would otherwise need 300 connections; the pool waits, then fails).
    commit()
    backend = backend or backends.backend_for(entry)
    params = GenerationParams(max_new_tokens=prompt_settings.max_new_tokens, temperature=settings.temperature,
                              language=language, sources=assembly.passages)
    guard = prompt_guard(settings, asked.text, assembly)
    writer = Writer(entry.label or backend.name, "extractive" if entry.extractive else entry.backend)
    yield from _generate(session, backend, assembly, params, question_id, conversation_id, started, commit,
                         writer, guard)


def _record_cancelled(session: SessionToken, question_id: int, commit: Callable[[], None],
                      partial_text: str = "", writer: Writer | None = None) -> None:
    """Store once that the student left or stopped the answer (what was said so far is kept with it)."""
    try:
        conversations.record_failure(session, question_id, "cancelled", partial_text=partial_text,
                                     model_id=writer.label if writer else None,
                                     answer_kind=writer.kind if writer else None)
        commit()
    except Exception:
        logger.warning("Could not record a cancelled answer")
        db.session.rollback()


def prompt_guard(settings: BotSettings, question: str, assembly: prompting.Assembly) -> EchoGuard:
    """The guard that keeps the teacher's prompt out of the answer (the sources and the question are public)."""
    public = [question, *(s.text for s in assembly.sources), *(s.label for s in assembly.sources)]
    return EchoGuard(settings.system_prompt, public)


def withheld_message(session: SessionToken, language: str) -> str:
    """The notice that replaces an answer that repeated the teacher's prompt, in the student's language."""
    locale = (session.locale or "").replace("_", "-").split("-")[0].lower()
    return i18n.text("chat_withheld", locale if locale in i18n.LANGUAGES else language)


def _system_prompt(settings: BotSettings) -> str:
    """The teacher's prompt plus what the settings add to it."""
    prompt = settings.system_prompt
    if settings.answer_language == "de":
        prompt += "\n\nAnswer in German."
    elif settings.answer_language == "en":
        prompt += "\n\nAnswer in English."
    return prompt


def _generate(session: SessionToken, backend: ChatBackend, assembly: prompting.Assembly, params: GenerationParams,
              question_id: int, conversation_id: int, started: float, commit: Callable[[], None],
              writer: Writer, guard: EchoGuard) -> Iterator[StreamEvent]:
    """Stream the backend's events through the guard and store the outcome (answer, or failure, question kept).

    ``parts`` holds only text the guard released: an echo of the teacher's prompt is never shown nor stored.
    """
    request_id = uuid.uuid4().hex
    parts: list[str] = []
    finished = False
    feed, keep = guard.feed, parts.extend  # looked up once, not per token
    # After the first visible text, tokens are sent at most once per interval, joined (COURSEBOTS_STREAM_INTERVAL_MS):
    # fewer, larger events cost the worker, the proxy and the browser less per answer; the text is the same.
    interval, held, due, monotonic = current_config().stream_interval_ms / 1000, [], 0.0, time.monotonic
    try:
        for event in backend.stream(assembly.messages, params, request_id):
            if isinstance(event, TokenEvent):
                released = feed(event.text)
                if released:
                    keep(released)
                    if interval <= 0:
                        for text in released:
                            yield "token", {"text": text}
                    else:
                        held.extend(released)
                        now = monotonic()
                        if now >= due:
                            yield "token", {"text": "".join(held)}
                            held, due = [], now + interval
                if guard.leaked:
                    finished = True
                    backend.cancel(request_id)  # the rest of this answer would be withheld anyway
                    if held:
                        yield "token", {"text": "".join(held)}  # released before the echo: safe, and stored
                    yield from _withhold(session, question_id, conversation_id, commit, writer,
                                         params.language or "en")
                    return
                continue
            if held:  # held text goes out before any other event, in order
                yield "token", {"text": "".join(held)}
                held = []
            if isinstance(event, StatusEvent):
                if event.state == "fallback":  # the model is unavailable: quoted passages answer instead
                    writer.kind = "fallback"
                yield "status", {"state": event.state, "position": event.position}
            elif isinstance(event, ErrorEvent):
                finished = True
                conversations.record_failure(session, question_id, event.code, partial_text="".join(parts),
                                             model_id=writer.label, answer_kind=writer.kind)
                commit()
                yield "error", {"code": event.code, "message": event.message, "position": event.position,
                                "conversation_id": conversation_id}
                return
            elif isinstance(event, DoneEvent):
                tail = guard.finish()  # the reader may still leave here: finished only once stored
                if tail:
                    parts.extend(tail)
                    yield "token", {"text": "".join(tail)}
                text = "".join(parts)
                citations = [asdict(c) for c in prompting.resolve_citations(text, assembly.sources)]
                best = max((s.score for s in assembly.sources), default=0.0)
                stored = conversations.record_answer(
                    session, question_id, text, citations=citations, confidence=best, model_id=writer.label,
                    answer_kind=writer.kind,
                    latency_ms=_ms(started), prompt_tokens=event.usage.prompt_tokens,
                    completion_tokens=event.usage.completion_tokens)
                commit()
                finished = True
                yield "done", done_payload(stored, conversation_id)
                return
    finally:
        if not finished:
            # The reader went away (stop button, closed page): stop generating, keep the question.
            backend.cancel(request_id)
            _record_cancelled(session, question_id, commit, "".join(parts), writer)


def _withhold(session: SessionToken, question_id: int, conversation_id: int, commit: Callable[[], None],
              writer: Writer, language: str) -> Iterator[StreamEvent]:
    """Store the withheld notice as the (failed) answer and tell the student; the echoed text is dropped."""
    logger.warning("An answer of bot %s repeated the teacher's prompt and was withheld", session.bot_id)
    notice = withheld_message(session, language)
    conversations.record_failure(session, question_id, "answer_withheld", partial_text=notice, model_id=writer.label,
                                 answer_kind=writer.kind)
    commit()
    yield "error", {"code": "answer_withheld", "message": notice, "conversation_id": conversation_id}


def _ms(started: float) -> int:
    """Milliseconds since ``started``."""
    return int((time.monotonic() - started) * 1000)
