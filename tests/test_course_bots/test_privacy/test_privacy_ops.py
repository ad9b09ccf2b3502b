"""Export, erasure, retention stages, consent re-ask, the k-threshold and the audit trail, on both databases."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from course_bots.privacy.models import AuditEvent, ConsentRecord, ParticipantLabel, RetentionPolicy
from course_bots.chat.models import ChatSession, Feedback, Message, UsageEvent
from course_bots.models import CourseBot
from course_bots.privacy_rules import Retention, pseudonym
from course_bots.privacy import consent, operations as privacy_ops
from course_bots.chat import teacher_logs
from course_bots.chat import conversations as conv
from lti_tool.extensions import current_config, db, utcnow

from tests.test_course_bots.conftest import BOTH_DATABASES, ISSUER, make_bot, make_session

pytestmark = pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)


def chat(session, cid: str = "c-1", question: str = "Was ist ein Vektor?",  # type: ignore[no-untyped-def]
         answer: str = "Ein Pfeil.") -> Message:
    q = conv.record_question(session, None, cid, question)
    a = conv.record_answer(session, q.id, answer, prompt_tokens=10, completion_tokens=5)
    conv.record_feedback(session, a.id, "up", "gut")
    return a


def count(model) -> int:  # type: ignore[no-untyped-def]
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_pseudonyms_stable_per_bot_different_across_bots_and_recomputable(ctx: Flask) -> None:
    bot1, bot2 = make_bot(), make_bot("course-2")
    key = current_config().pseudonym_key
    assert make_session(bot1).pseudonym == make_session(bot1).pseudonym == pseudonym(key, ISSUER, "user-42", bot1.id)
    assert make_session(bot1).pseudonym != make_session(bot2).pseudonym
    assert make_session(bot1).pseudonym != make_session(bot1, sub="user-43").pseudonym
    assert pseudonym("another-key", ISSUER, "user-42", bot1.id) != make_session(bot1).pseudonym


def test_admin_erase_removes_everything_of_that_user_and_nothing_else(ctx: Flask) -> None:
    bot1, bot2 = make_bot(), make_bot("course-2")
    other_platform_bot = make_bot("course-1", issuer="https://other.example")
    alice1, alice2 = make_session(bot1), make_session(bot2)
    alice_other = make_session(other_platform_bot)  # same sub on another platform: another person
    bob = make_session(bot1, sub="user-43")
    for s in (alice1, alice2, alice_other, bob):
        chat(s)
        consent.record_consent(s, True, 0)
    teacher = make_session(bot1, sub="t-1", roles=("instructor",))
    privacy_ops.audit_session(alice1, "logs_export")  # an audit entry by alice (as if she were a teacher)
    privacy_ops.audit_session(teacher, "logs_export")
    db.session.commit()
    before = {m: count(m) for m in (ChatSession, Message, Feedback, ConsentRecord, ParticipantLabel)}

    result = privacy_ops.erase_user(ISSUER, "user-42")
    db.session.commit()

    assert result["courses"] == 2 and result["conversations"] == 2 and result["messages"] == 4
    for s in (alice1, alice2):
        assert privacy_ops.export_pseudonym(s.bot_id, s.pseudonym) == {
            "participant_number": None, "conversations": [], "consent": []}
    for s in (alice_other, bob):
        data = privacy_ops.export_pseudonym(s.bot_id, s.pseudonym)
        assert len(data["conversations"]) == 1 and len(data["consent"]) == 1 and data["participant_number"]
    assert count(ChatSession) == before[ChatSession] - 2 and count(Message) == before[Message] - 4
    assert count(Feedback) == before[Feedback] - 2 and count(ConsentRecord) == before[ConsentRecord] - 2
    assert count(ParticipantLabel) == before[ParticipantLabel] - 2
    pseudonyms = set(db.session.scalars(select(AuditEvent.actor_pseudonym)))
    assert alice1.pseudonym not in pseudonyms and teacher.pseudonym in pseudonyms
    erase_events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin_erase")).all()
    assert len(erase_events) == 2 and all(e.actor_pseudonym is None for e in erase_events)
    assert "user-42" not in repr([(e.target_id, e.details) for e in erase_events])


def test_export_is_complete(ctx: Flask) -> None:
    bot1, bot2 = make_bot(), make_bot("course-2")
    s1 = make_session(bot1)
    q = conv.record_question(s1, None, "c-1", "Frage eins von anna@uni.example")
    failed = conv.record_failure(s1, q.id, "timeout")
    conv.record_question(s1, q.session_id, "c-2", "Frage zwei")
    a = chat(s1, "c-3")
    consent.record_consent(s1, True, 0)
    chat(make_session(bot2), "c-1", "Andere Frage")
    chat(make_session(bot1, sub="user-43"), "c-1", "Bobs Frage")
    db.session.commit()
    mine = privacy_ops.export_for_session(s1)
    texts = [m["text"] for c in mine["conversations"] for m in c["messages"]]
    assert texts == ["Frage eins von [email]", "", "Frage zwei", "Was ist ein Vektor?", "Ein Pfeil."]
    statuses = {m["id"]: m["status"] for c in mine["conversations"] for m in c["messages"]}
    assert statuses[failed.id] == "failed"
    assert [m["feedback"] for c in mine["conversations"] for m in c["messages"] if m["id"] == a.id][0]["value"] == "up"
    assert mine["consent"][0]["accepted"] is True and mine["participant_number"] == 1
    everything = privacy_ops.export_user(ISSUER, "user-42")
    assert {c["bot_id"] for c in everything["courses"]} == {bot1.id, bot2.id}
    assert "Bobs Frage" not in repr(everything)


def test_retention_stages_anonymize_then_delete_and_inactive_bots(ctx: Flask) -> None:
    bot, idle_bot = make_bot(), make_bot("course-old")
    student = make_session(bot)
    old, older, fresh = (chat(student, c).session_id for c in ("c-1", "c-2", "c-3"))
    chat(make_session(idle_bot))
    now = utcnow()
    for session_id, age in ((old, 100), (older, 400), (fresh, 1)):
        db.session.get(ChatSession, session_id).updated_at = now - timedelta(days=age)  # type: ignore[union-attr]
    db.session.get(CourseBot, idle_bot.id).last_used_at = now - timedelta(days=800)  # type: ignore[union-attr]
    db.session.commit()

    counts = privacy_ops.purge(now)
    db.session.commit()

    assert counts["bots_deleted"] == 1 and db.session.get(CourseBot, idle_bot.id) is None
    assert count(UsageEvent) == 1  # the idle bot's counters went with it
    assert counts == {"anonymized": 1, "deleted": 1, "bots_deleted": 1, "labels_deleted": 0}
    assert db.session.get(ChatSession, older) is None
    anonymized = db.session.get(ChatSession, old)
    assert anonymized is not None and anonymized.pseudonym is None and anonymized.anonymized_at is not None
    assert db.session.get(ChatSession, fresh).pseudonym == student.pseudonym  # type: ignore[union-attr]
    deleted_event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "bot_deleted")).one()
    assert deleted_event.bot_id is None and deleted_event.target_id == str(idle_bot.id)
    # Export by the student no longer contains the anonymized conversation: it cannot be linked to them.
    assert len(privacy_ops.export_for_session(student)["conversations"]) == 1
    assert privacy_ops.purge(now) == {"anonymized": 0, "deleted": 0, "bots_deleted": 0, "labels_deleted": 0}


def test_bot_override_may_only_be_stricter(ctx: Flask) -> None:
    bot = make_bot()
    privacy_ops.set_retention(ISSUER, 60, 200)
    assert privacy_ops.effective_retention(bot.id) == Retention(60, 200)
    with pytest.raises(ValueError, match="shorter"):
        privacy_ops.set_retention(ISSUER, 90, 200, bot_id=bot.id)
    with pytest.raises(ValueError, match="shorter"):
        privacy_ops.set_retention(ISSUER, 30, 0, bot_id=bot.id)  # 0 = never deleted: looser
    with pytest.raises(ValueError):
        privacy_ops.set_retention(ISSUER, 300, 200)
    privacy_ops.set_retention(ISSUER, 7, 30, bot_id=bot.id)
    db.session.commit()
    assert privacy_ops.effective_retention(bot.id) == Retention(7, 30)
    privacy_ops.set_retention(ISSUER, 5, 20)  # the platform tightens beyond the override: the stricter wins
    assert privacy_ops.effective_retention(bot.id) == Retention(5, 20)
    assert count(RetentionPolicy) == 2
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("retention_changed") == 3


def test_bot_override_applies_in_purge(ctx: Flask) -> None:
    bot, other = make_bot(), make_bot("course-2")
    a, b = chat(make_session(bot)), chat(make_session(other))
    privacy_ops.set_retention(ISSUER, 3, 10, bot_id=bot.id)
    now = utcnow()
    for answer in (a, b):
        db.session.get(ChatSession, answer.session_id).updated_at = now - timedelta(days=5)  # type: ignore[union-attr]
    db.session.commit()
    assert privacy_ops.purge(now)["anonymized"] == 1
    assert db.session.get(ChatSession, a.session_id).pseudonym is None  # type: ignore[union-attr]
    assert db.session.get(ChatSession, b.session_id).pseudonym is not None  # type: ignore[union-attr]


def test_consent_first_use_new_version_and_external_model(ctx: Flask) -> None:
    bot = make_bot()
    student = make_session(bot)
    status = consent.consent_status(student)
    assert status["required"] and status["reason"] == "first_use" and status["notice"]["language"] == "de"
    assert "90" in status["notice"]["text"] and "365" in status["notice"]["text"]
    consent.record_consent(student, True, 0)
    assert consent.has_consent(student)
    consent.set_notice(ISSUER, "de", "Neuer Text, Version zwei.")
    status = consent.consent_status(student)
    assert status["reason"] == "new_version" and status["notice"]["version"] == 1
    with pytest.raises(consent.ConsentError):
        consent.record_consent(student, True, 0)  # answering the text they no longer see
    consent.record_consent(student, True, 1)
    assert consent.has_consent(student)
    ctx.extensions["coursebots.external_model_resolver"] = lambda bot_id: "ExampleGPT"
    status = consent.consent_status(student)
    assert status["reason"] == "external_model" and status["external_model"] == "ExampleGPT"
    consent.record_consent(student, False, 1)
    assert consent.consent_status(student)["reason"] == "declined"
    consent.record_consent(student, True, 1)
    assert consent.has_consent(student)
    ctx.extensions.pop("coursebots.external_model_resolver")
    assert consent.has_consent(student)  # back to local: nothing new to agree to
    english = make_session(bot, sub="user-99", locale="en-US")
    assert consent.consent_status(english)["notice"]["version"] == 0  # no English notice yet: built-in text


def test_k_threshold_closes_logs_and_exports_in_small_courses(ctx: Flask) -> None:
    bot = make_bot()
    k = current_config().privacy_min_students
    teacher_preview = make_session(bot, sub="t-1", roles=("instructor",), preview=True)
    chat(teacher_preview)
    for i in range(k - 1):
        chat(make_session(bot, sub=f"student-{i}"))
        chat(make_session(bot, sub=f"student-{i}"), "c-2")  # the same student twice counts once
    db.session.commit()
    closed = teacher_logs.teacher_logs(bot.id)
    assert not closed["open"] and closed["items"] == [] and closed["students"] == k - 1
    assert closed["questions"] == 2 * (k - 1) and str(k) in closed["message"]
    assert teacher_logs.export_rows(bot.id) == []
    chat(make_session(bot, sub="student-last"))
    db.session.commit()
    opened = teacher_logs.teacher_logs(bot.id)
    assert opened["open"] and opened["total"] == 2 * (k - 1) + 1
    assert {item["participant"] for item in opened["items"]} == {f"Student {n}" for n in range(1, k + 1)}
    assert all("pseudonym" not in repr(item.keys()) for item in opened["items"])
    rows = teacher_logs.export_rows(bot.id)
    assert len(rows) == 2 * (k - 1) + 1 and rows[0]["question"] == "Was ist ein Vektor?"
    assert "Student 1" in teacher_logs.to_csv(rows)


def test_csv_export_neutralises_formulas(ctx: Flask) -> None:
    csv_text = teacher_logs.to_csv([{"question": "=HYPERLINK(\"http://evil\")", "answer": "ok"}])
    assert "'=HYPERLINK" in csv_text
