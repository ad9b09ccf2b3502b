"""Chat data is stored only scrubbed, by pseudonym and role; retries never store a question twice."""
from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from course_bots.chat.models import ChatSession, Feedback, Message, UsageEvent
from course_bots.privacy.models import ParticipantLabel
from course_bots.chat import conversations as conv
from lti_tool.extensions import db

from tests.test_course_bots.conftest import BOTH_DATABASES, make_bot, make_session

pytestmark = pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)


def test_question_is_scrubbed_and_idempotent(ctx: Flask) -> None:
    bot = make_bot()
    student = make_session(bot)
    text = "Hallo, ich bin Anna-Lena MÜLLER (anna-lena.mueller@uni.example), Tel. 0151 23456789. Was ist RAG?"
    first = conv.record_question(student, None, "c-1", text)
    again = conv.record_question(student, None, "c-1", text)
    db.session.commit()
    assert again.id == first.id
    assert db.session.scalar(select(func.count(Message.id))) == 1
    assert db.session.scalar(select(func.count(ChatSession.id))) == 1
    stored = db.session.get(Message, first.id)
    assert stored is not None
    assert "Müller" not in stored.text and "MÜLLER" not in stored.text and "anna" not in stored.text.lower()
    assert "0151" not in stored.text
    assert "[name]" in stored.text and "[email]" in stored.text and "[phone]" in stored.text
    assert "Was ist RAG?" in stored.text
    conversation = db.session.get(ChatSession, first.session_id)
    assert conversation is not None and conversation.pseudonym == student.pseudonym
    assert conversation.role == "learner" and "Müller" not in conversation.title


def test_retry_within_conversation_and_failure_then_answer(ctx: Flask) -> None:
    bot = make_bot()
    student = make_session(bot)
    q1 = conv.record_question(student, None, "c-1", "Erste Frage")
    q2 = conv.record_question(student, q1.session_id, "c-2", "Zweite Frage")
    assert conv.record_question(student, q1.session_id, "c-2", "Zweite Frage").id == q2.id
    failed = conv.record_failure(student, q2.id, "backend_timeout", partial_text="Die Antw")
    assert failed.status == "failed" and failed.error_code == "backend_timeout"
    answer = conv.record_answer(student, q2.id, "Antwort für Müller [1]", citations=[{"quote": "Herr Müller"}],
                                prompt_tokens=100, completion_tokens=20, model_id="tiny")
    db.session.commit()
    assert answer.id == failed.id and answer.status == "ok" and answer.error_code is None
    assert answer.text == "Antwort für [name] [1]" and answer.citations == [{"quote": "Herr [name]"}]
    assert [m.role for m in conv.conversation_messages(student, q1.session_id)] == ["user", "user", "assistant"]
    usage = db.session.scalars(select(UsageEvent)).one()
    assert (usage.questions, usage.answers, usage.errors, usage.prompt_tokens) == (2, 1, 1, 100)


def test_feedback_scrubbed_and_last_one_wins(ctx: Flask) -> None:
    bot = make_bot()
    student = make_session(bot)
    q = conv.record_question(student, None, "c-1", "Frage")
    a = conv.record_answer(student, q.id, "Antwort")
    conv.record_feedback(student, a.id, "down", "Falsch, schreib mir an anna@uni.example")
    conv.record_feedback(student, a.id, "up", "Danke, Frau Müller")
    db.session.commit()
    feedback = db.session.scalars(select(Feedback)).one()
    assert (feedback.value, feedback.comment) == ("up", "Danke, Frau [name]")
    with pytest.raises(conv.ConversationError):
        conv.record_feedback(student, q.id, "up")  # feedback is on answers only


def test_other_users_and_courses_cannot_touch_a_conversation(ctx: Flask) -> None:
    bot, other_bot = make_bot(), make_bot("course-2")
    alice, bob = make_session(bot), make_session(bot, sub="user-43")
    alice_elsewhere = make_session(other_bot)
    q = conv.record_question(alice, None, "c-1", "Frage")
    a = conv.record_answer(alice, q.id, "Antwort")
    db.session.commit()
    for intruder in (bob, alice_elsewhere):
        with pytest.raises(conv.ConversationError) as info:
            conv.get_conversation(intruder, q.session_id)
        assert info.value.status == 404
        with pytest.raises(conv.ConversationError):
            conv.record_question(intruder, q.session_id, "c-9", "hijack")
        with pytest.raises(conv.ConversationError):
            conv.record_answer(intruder, q.id, "x")
        with pytest.raises(conv.ConversationError):
            conv.record_feedback(intruder, a.id, "up")
        with pytest.raises(conv.ConversationError):
            conv.delete_conversation(intruder, q.session_id)
        assert conv.delete_all_conversations(intruder) == 0
    assert conv.list_conversations(bob) == []


def test_delete_own_conversations(ctx: Flask) -> None:
    bot = make_bot()
    alice, bob = make_session(bot), make_session(bot, sub="user-43")
    a1 = conv.record_question(alice, None, "c-1", "eins")
    conv.record_question(alice, None, "c-2", "zwei")
    b1 = conv.record_question(bob, None, "c-1", "drei")
    ans = conv.record_answer(alice, a1.id, "Antwort")
    conv.record_feedback(alice, ans.id, "up")
    db.session.commit()
    conv.delete_conversation(alice, a1.session_id)
    db.session.commit()
    assert len(conv.list_conversations(alice)) == 1
    assert db.session.scalar(select(func.count(Feedback.id))) == 0
    assert conv.delete_all_conversations(alice) == 1
    db.session.commit()
    assert conv.list_conversations(alice) == []
    assert [c.id for c in conv.list_conversations(bob)] == [b1.session_id]


def test_labels_stable_per_course_and_preview_not_counted(ctx: Flask) -> None:
    bot = make_bot()
    alice, bob = make_session(bot), make_session(bot, sub="user-43")
    teacher_preview = make_session(bot, sub="teacher-1", roles=("instructor",), preview=True)
    conv.record_question(alice, None, "c-1", "a")
    conv.record_question(bob, None, "c-1", "b")
    conv.record_question(alice, None, "c-2", "c")
    conv.record_question(teacher_preview, None, "c-1", "preview question")
    db.session.commit()
    labels = dict(db.session.execute(select(ParticipantLabel.pseudonym, ParticipantLabel.number)).all())
    assert labels == {alice.pseudonym: 1, bob.pseudonym: 2}
    assert db.session.scalars(select(UsageEvent)).one().questions == 3
    preview = db.session.scalars(select(ChatSession).where(ChatSession.preview.is_(True))).one()
    assert preview.preview and preview.role == "instructor"


def test_empty_question_and_bad_client_id_rejected(ctx: Flask) -> None:
    student = make_session(make_bot())
    with pytest.raises(conv.ConversationError, match="empty"):
        conv.record_question(student, None, "c-1", "   ")
    with pytest.raises(conv.ConversationError):
        conv.record_question(student, None, "", "Frage")
    with pytest.raises(conv.ConversationError):
        conv.record_question(student, None, "x" * 65, "Frage")
