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

from course_bots.chat import prompting
from course_bots.materials import operations as materials
from course_bots.llm.base import (ChatBackend, DoneEvent, ErrorEvent, GenerationParams, StatusEvent, TokenEvent)
from course_bots.llm.echo_guard import EchoGuard
from course_bots.llm.extractive import fixed_text_language as guess_language
from course_bots.settings.models import BotSettings
from course_bots.render import render_markdown
from course_bots import backends
from lti_tool.context import SessionToken
from lti_tool.extensions import current_config, db
from retrieval.types import SearchHit

logger = logging.getLogger(__name__)

StreamEvent = tuple[str, dict[str, Any]]
Search = Callable[[int, str, int], Sequence[SearchHit]]
UNCOVERED_SUFFIX = {
    "en": " You can also ask your teacher directly.",
    "de": " Du kannst auch direkt deine Lehrperson fragen.",
}
WITHHELD = {
    "en": "This answer was withheld because it repeated the course bot's private instructions. "
          "Please ask your question in a different way.",
    "de": "Diese Antwort wurde zurückgehalten, weil sie die nicht öffentlichen Anweisungen des Kurs-Bots "
          "wiederholt hat. Bitte stelle deine Frage anders.",
}


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


def _conversations() -> Any:
    """The privacy issue's conversations service: the only way chat data is stored."""
    from course_bots.chat import conversations

    return conversations


def stored_answer(question_id: int) -> Any:
    """The successful stored answer to a question, if any (a retry of an answered question gets it back)."""
    from course_bots.chat.models import Message

    return db.session.scalars(select(Message).where(Message.reply_to_id == question_id, Message.status == "ok")
                              .order_by(Message.id.desc())).first()


def history(conversation_id: int, before_id: int, limit: int = 20) -> list[dict[str, str]]:
    """Earlier turns of a conversation (stored, scrubbed texts), oldest first."""
    from course_bots.chat.models import Message

    query = (select(Message).where(Message.session_id == conversation_id, Message.id < before_id,
                                   Message.status == "ok").order_by(Message.id.desc()).limit(limit))
    return [{"role": m.role, "content": m.text} for m in reversed(list(db.session.scalars(query)))]


def done_payload(answer: Any, conversation_id: int) -> dict[str, Any]:
    """The ``done`` event's data for a stored answer."""
    citations = list(answer.citations or [])
    numbers = {int(c.get("number", 0)) for c in citations}
    return {"message_id": answer.id, "conversation_id": conversation_id,
            "html": render_markdown(answer.text, citations=numbers), "citations": citations}


def settings_for(bot_id: int) -> BotSettings:
    """The bot's settings (created with defaults when missing)."""
    from course_bots.settings.operations import get_settings

    return get_settings(bot_id)


def record(session: SessionToken, question: Question) -> Any:
    """Store the question (scrubbed, once per client id) before answering; raises ``ConversationError``."""
    return _conversations().record_question(session, question.conversation_id, question.client_id, question.text)


def answer(session: SessionToken, question: Question, *, search: Search | None = None,
           backend: ChatBackend | None = None, commit: Callable[[], None] | None = None,
           stored_question_id: int | None = None) -> Iterator[StreamEvent]:
    """Answer one question as a stream of API events; ``commit`` is the view's commit (called after each store).

    ``stored_question_id`` is the id :func:`record` returned when the view stored the question itself (a
    streamed response outlives the view's database session, so objects are re-read here by id).
    """
    from course_bots.chat.models import Message

    commit = commit or db.session.commit
    search = search or default_search
    conversations = _conversations()
    if stored_question_id is None:
        stored_question = record(session, question)
        commit()
    else:
        stored_question = db.session.get(Message, stored_question_id)
    conversation_id = stored_question.session_id
    previous = stored_answer(stored_question.id)
    if previous is not None:
        yield "done", done_payload(previous, conversation_id)  # a retry of an answered question
        return
    started = time.monotonic()
    settings = settings_for(question.bot_id)
    config = current_config()
    entry = backends.entry_for(config, settings.model_key)
    language = settings.answer_language if settings.answer_language in ("de", "en") else guess_language(question.text)
    yield "status", {"state": "started", "conversation_id": conversation_id, "question_id": stored_question.id}
    try:
        hits = search(question.bot_id, question.text, 8)
        prompt_settings = prompting.PromptSettings(
            system_prompt=_system_prompt(settings), context_window=entry.context_window,
            max_new_tokens=min(settings.max_answer_tokens, entry.max_answer_tokens),
            min_score=config.answer_score_threshold, language=language)
        assembly = prompting.assemble(question.text, hits, history(conversation_id, stored_question.id),
                                      prompt_settings)
    except Exception:
        logger.exception("Preparing the answer failed for bot %s", question.bot_id)
        conversations.record_failure(session, stored_question.id, "internal")
        commit()
        yield "error", {"code": "internal", "message": "The answer could not be prepared.",
                        "conversation_id": conversation_id}
        return
    if not assembly.covered:
        text = assembly.refusal or prompting.not_covered_message(language)
        if settings.uncovered_behaviour == "refuse_suggest_teacher":
            text += UNCOVERED_SUFFIX.get(language, UNCOVERED_SUFFIX["en"])
        yield "token", {"text": text}
        stored = conversations.record_answer(session, stored_question.id, text, citations=[], confidence=0.0,
                                             model_id="refusal", latency_ms=_ms(started))
        commit()
        yield "done", done_payload(stored, conversation_id)
        return
    backend = backend or backends.backend_for(entry)
    params = GenerationParams(max_new_tokens=prompt_settings.max_new_tokens, temperature=settings.temperature,
                              language=language, sources=assembly.passages)
    guard = prompt_guard(settings, question.text, assembly)
    yield from _generate(session, backend, assembly, params, stored_question, conversation_id, started, commit,
                         entry.label or backend.name, guard)


def prompt_guard(settings: BotSettings, question: str, assembly: prompting.Assembly) -> EchoGuard:
    """The guard that keeps the teacher's prompt out of the answer (the sources and the question are public)."""
    public = [question, *(s.text for s in assembly.sources), *(s.label for s in assembly.sources)]
    return EchoGuard(settings.system_prompt, public)


def withheld_message(session: SessionToken, language: str) -> str:
    """The notice that replaces an answer that repeated the teacher's prompt, in the student's language."""
    locale = (session.locale or "").replace("_", "-").split("-")[0].lower()
    return WITHHELD.get(locale if locale in WITHHELD else language, WITHHELD["en"])


def _system_prompt(settings: BotSettings) -> str:
    """The teacher's prompt plus what the settings add to it."""
    prompt = settings.system_prompt
    if settings.answer_language == "de":
        prompt += "\n\nAnswer in German."
    elif settings.answer_language == "en":
        prompt += "\n\nAnswer in English."
    return prompt


def _generate(session: SessionToken, backend: ChatBackend, assembly: prompting.Assembly, params: GenerationParams,
              stored_question: Any, conversation_id: int, started: float, commit: Callable[[], None],
              model_label: str, guard: EchoGuard) -> Iterator[StreamEvent]:
    """Stream the backend's events through the guard and store the outcome (answer, or failure, question kept).

    ``parts`` holds only text the guard released: an echo of the teacher's prompt is never shown nor stored.
    """
    conversations = _conversations()
    request_id = uuid.uuid4().hex
    parts: list[str] = []
    finished = False
    try:
        for event in backend.stream(assembly.messages, params, request_id):
            if isinstance(event, TokenEvent):
                for text in guard.feed(event.text):
                    parts.append(text)
                    yield "token", {"text": text}
                if guard.leaked:
                    finished = True
                    backend.cancel(request_id)  # the rest of this answer would be withheld anyway
                    yield from _withhold(session, stored_question, conversation_id, commit, model_label,
                                         params.language or "en")
                    return
            elif isinstance(event, StatusEvent):
                yield "status", {"state": event.state, "position": event.position}
            elif isinstance(event, ErrorEvent):
                finished = True
                conversations.record_failure(session, stored_question.id, event.code, partial_text="".join(parts),
                                             model_id=model_label)
                commit()
                yield "error", {"code": event.code, "message": event.message, "position": event.position,
                                "conversation_id": conversation_id}
                return
            elif isinstance(event, DoneEvent):
                finished = True
                for text in guard.finish():
                    parts.append(text)
                    yield "token", {"text": text}
                text = "".join(parts)
                citations = [asdict(c) for c in prompting.resolve_citations(text, assembly.sources)]
                best = max((s.score for s in assembly.sources), default=0.0)
                stored = conversations.record_answer(
                    session, stored_question.id, text, citations=citations, confidence=best, model_id=model_label,
                    latency_ms=_ms(started), prompt_tokens=event.usage.prompt_tokens,
                    completion_tokens=event.usage.completion_tokens)
                commit()
                yield "done", done_payload(stored, conversation_id)
                return
    finally:
        if not finished:
            # The reader went away (stop button, closed page): stop generating, keep the question.
            backend.cancel(request_id)
            try:
                conversations.record_failure(session, stored_question.id, "cancelled",
                                             partial_text="".join(parts), model_id=model_label)
                commit()
            except Exception:
                logger.warning("Could not record a cancelled answer")
                db.session.rollback()


def _withhold(session: SessionToken, stored_question: Any, conversation_id: int, commit: Callable[[], None],
              model_label: str, language: str) -> Iterator[StreamEvent]:
    """Store the withheld notice as the (failed) answer and tell the student; the echoed text is dropped."""
    logger.warning("An answer of bot %s repeated the teacher's prompt and was withheld", session.bot_id)
    notice = withheld_message(session, language)
    _conversations().record_failure(session, stored_question.id, "answer_withheld", partial_text=notice,
                                    model_id=model_label)
    commit()
    yield "error", {"code": "answer_withheld", "message": notice, "conversation_id": conversation_id}


def _ms(started: float) -> int:
    """Milliseconds since ``started``."""
    return int((time.monotonic() - started) * 1000)
