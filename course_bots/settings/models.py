"""What a teacher decides about a course bot: settings (1:1 with CourseBot), prompt versions and copy codes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.extensions import UTCDateTime, db, utcnow

TEACHING_MODES = ("tutor", "faq", "exam", "custom")
UNCOVERED_BEHAVIOURS = ("refuse", "refuse_suggest_teacher")
ANSWER_LANGUAGES = ("auto", "de", "en")

# Filled into the system prompt when a teacher picks a mode; the teacher may edit the text afterwards.
MODE_PROMPTS: dict[str, dict[str, str]] = {
    "tutor": {
        "en": "You are a patient tutor for this course. Guide students towards the solution with questions, hints "
              "and explanations of the underlying ideas. Do not hand out complete solutions to exercises or "
              "assignments; show the next step instead and encourage the student to try it.",
        "de": "Du bist eine geduldige Tutorin bzw. ein geduldiger Tutor für diesen Kurs. Führe die Studierenden mit "
              "Fragen, Hinweisen und Erklärungen der zugrunde liegenden Ideen zur Lösung. Gib keine vollständigen "
              "Lösungen zu Übungen oder Aufgaben heraus; zeige stattdessen den nächsten Schritt und ermutige dazu, "
              "ihn selbst zu versuchen.",
    },
    "faq": {
        "en": "You answer organisational and content questions about this course briefly and precisely, like a "
              "course FAQ. Quote dates, rules and definitions exactly as the materials state them.",
        "de": "Du beantwortest organisatorische und inhaltliche Fragen zu diesem Kurs kurz und präzise, wie eine "
              "Kurs-FAQ. Gib Termine, Regeln und Definitionen genau so wieder, wie sie in den Materialien stehen.",
    },
    "exam": {
        "en": "You help students prepare for the exam of this course. Explain key concepts, ask short practice "
              "questions about the materials, give feedback on the student's answers and point out which parts of "
              "the materials to revise.",
        "de": "Du hilfst Studierenden bei der Prüfungsvorbereitung für diesen Kurs. Erkläre zentrale Begriffe, "
              "stelle kurze Übungsfragen zu den Materialien, gib Rückmeldung zu den Antworten und nenne die Teile "
              "der Materialien, die wiederholt werden sollten.",
    },
}


def mode_prompt(mode: str, language: str) -> str:
    """The template prompt of a teaching mode in ``language`` (English when unknown; empty for custom)."""
    texts = MODE_PROMPTS.get(mode)
    if not texts:
        return ""
    return texts.get(language, texts["en"])


class BotSettings(db.Model):  # type: ignore[name-defined]
    """A bot's teacher-controlled settings; a row is created with defaults on first read."""

    __tablename__ = "bot_settings"

    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    welcome_message: Mapped[str] = mapped_column(Text, default="")
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    answer_language: Mapped[str] = mapped_column(String(8), default="auto")
    teaching_mode: Mapped[str] = mapped_column(String(16), default="tutor")
    temperature: Mapped[float] = mapped_column(Float, default=0.2)
    max_answer_tokens: Mapped[int] = mapped_column(Integer, default=512)
    model_key: Mapped[str] = mapped_column(String(120), default="")
    uncovered_behaviour: Mapped[str] = mapped_column(String(32), default="refuse")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_message: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PromptVersion(db.Model):  # type: ignore[name-defined]
    """Every saved system prompt, with the saving role and time (for diff and restore)."""

    __tablename__ = "prompt_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    prompt: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CopyCode(db.Model):  # type: ignore[name-defined]
    """A one-time code that copies a bot (settings, prompt, materials, FAQ; never logs) into another course."""

    __tablename__ = "bot_copy_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("course_bot.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
