"""The privacy API and CLI as a page and an admin use them: tokens, ownership, k-threshold, audit, JSON output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from course_bots.chat import conversations as conv
from course_bots.chat.models import ChatSession
from course_bots.models import CourseBot
from course_bots.privacy import operations as privacy_ops
from course_bots.privacy.models import AuditEvent, ConsentRecord
from course_bots.privacy.scheduler import init_purge_scheduler, run_purge_once
from lti_tool.extensions import current_config, db, utcnow
from tests.test_course_bots.conftest import BOTH_DATABASES, ISSUER, bearer, make_bot, make_session

pytestmark = pytest.mark.parametrize("app", BOTH_DATABASES, indirect=True)


def seed_course(students: int) -> tuple[int, list]:  # type: ignore[type-arg]
    bot = make_bot()
    sessions = [make_session(bot, sub=f"student-{i}") for i in range(students)]
    for s in sessions:
        q = conv.record_question(s, None, "c-1", f"Frage von Anna Müller, Nummer {s.pseudonym[:4]}")
        conv.record_answer(s, q.id, "Antwort")
    db.session.commit()
    return bot.id, sessions


def test_consent_round_trip(ctx: Flask) -> None:
    client = ctx.test_client()
    bot = make_bot()
    headers = bearer(make_session(bot))
    status = client.get("/api/v1/consent", headers=headers).get_json()
    assert status["required"] and status["reason"] == "first_use"
    bad = client.post("/api/v1/consent", headers=headers, json={"accepted": "yes"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_request"
    stale = client.post("/api/v1/consent", headers=headers, json={"accepted": True, "version": 7})
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "notice_changed"
    ok = client.post("/api/v1/consent", headers=headers, json={"accepted": True, "version": 0})
    assert ok.status_code == 200 and ok.get_json()["accepted"] is True
    assert db.session.scalar(select(func.count(ConsentRecord.id))) == 1


def test_requires_a_token(ctx: Flask) -> None:
    client = ctx.test_client()
    for method, url in (("get", "/api/v1/consent"), ("get", "/api/v1/me/export"),
                        ("delete", "/api/v1/me/conversations"), ("delete", "/api/v1/conversations/1"),
                        ("get", "/api/v1/bots/1/logs"), ("get", "/api/v1/bots/1/audit")):
        response = getattr(client, method)(url)
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_student_export_and_delete_own_only(ctx: Flask) -> None:
    client = ctx.test_client()
    bot_id, (alice, bob) = seed_course(2)
    alice_h, bob_h = bearer(alice), bearer(bob)
    exported = client.get("/api/v1/me/export", headers=alice_h)
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    data = json.loads(exported.data)
    assert len(data["conversations"]) == 1 and "Müller" not in exported.get_data(as_text=True)
    alice_conversation = data["conversations"][0]["id"]
    denied = client.delete(f"/api/v1/conversations/{alice_conversation}", headers=bob_h)
    assert denied.status_code == 404 and denied.get_json()["error"]["code"] == "not_found"
    assert client.delete(f"/api/v1/conversations/{alice_conversation}", headers=alice_h).status_code == 200
    assert client.delete("/api/v1/me/conversations", headers=alice_h).get_json() == {"deleted": 0}
    assert client.delete("/api/v1/me/conversations", headers=bob_h).get_json() == {"deleted": 1}
    assert db.session.scalar(select(func.count(ChatSession.id))) == 0
    erased = client.delete("/api/v1/me", headers=alice_h).get_json()
    assert erased["labels"] == 1
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "self_export" in actions and "self_erase" in actions


def test_learners_never_reach_teacher_routes_and_teachers_only_their_bot(ctx: Flask) -> None:
    client = ctx.test_client()
    bot_id, (student,) = seed_course(1)
    other = make_bot("course-2")
    teacher = make_session(db.session.get(CourseBot, bot_id), sub="t-1", roles=("instructor",))
    other_teacher = make_session(other, sub="t-2", roles=("instructor",))
    preview = make_session(db.session.get(CourseBot, bot_id), sub="t-1", roles=("instructor",), preview=True)
    for url in (f"/api/v1/bots/{bot_id}/logs", f"/api/v1/bots/{bot_id}/logs/export?format=json",
                f"/api/v1/bots/{bot_id}/audit"):
        assert client.get(url, headers=bearer(student)).status_code == 403
        assert client.get(url, headers=bearer(preview)).status_code == 403  # preview acts as a student
        foreign = client.get(url, headers=bearer(other_teacher))
        assert foreign.status_code == 403 and foreign.get_json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/bots/{bot_id}/logs", headers=bearer(teacher)).status_code == 200


def test_logs_closed_below_k_then_open_and_export_audited(ctx: Flask) -> None:
    client = ctx.test_client()
    k = current_config().privacy_min_students
    bot_id, sessions = seed_course(k - 1)
    teacher = make_session(db.session.get(CourseBot, bot_id), sub="t-1",
                           roles=("instructor",))
    headers = bearer(teacher)
    closed = client.get(f"/api/v1/bots/{bot_id}/logs", headers=headers).get_json()
    assert closed["open"] is False and closed["items"] == [] and closed["questions"] == k - 1
    assert closed["message"].startswith("Unterhaltungen werden sichtbar") and f"mindestens {k}" in closed["message"]
    refused = client.get(f"/api/v1/bots/{bot_id}/logs/export?format=csv", headers=headers)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "logs_closed"
    extra = make_session(db.session.get(CourseBot, bot_id),
                         sub="student-extra")
    conv.record_question(extra, None, "c-1", "noch eine Frage")
    db.session.commit()
    opened = client.get(f"/api/v1/bots/{bot_id}/logs?only=unanswered", headers=headers).get_json()
    assert opened["open"] is True and opened["total"] == 1
    assert opened["items"][0]["participant"] == f"Student {k}"
    csv_response = client.get(f"/api/v1/bots/{bot_id}/logs/export?format=csv", headers=headers)
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    body = csv_response.get_data(as_text=True)
    assert "Student 1" in body and "Müller" not in body and "[name]" in body
    assert client.get(f"/api/v1/bots/{bot_id}/logs/export?format=xml", headers=headers).status_code == 400
    audit = client.get(f"/api/v1/bots/{bot_id}/audit", headers=headers).get_json()["items"]
    assert audit[0]["action"] == "logs_export" and audit[0]["actor_role"] == "instructor"
    assert audit[0]["details"] == {"format": "csv", "rows": k}
    assert teacher.pseudonym not in json.dumps(audit)
    bad = client.get(f"/api/v1/bots/{bot_id}/logs?since=yesterday", headers=headers)
    assert bad.status_code == 400


def test_cli_export_erase_retention_consent_purge(ctx: Flask, tmp_path: Path) -> None:
    runner = ctx.test_cli_runner()
    bot_id, (alice, bob) = seed_course(2)
    exported = runner.invoke(args=["privacy", "export", "--issuer", ISSUER, "--user", "student-0"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert [c["bot_id"] for c in data["courses"]] == [bot_id] and len(data["courses"][0]["conversations"]) == 1
    erased = runner.invoke(args=["privacy", "erase", "--issuer", ISSUER, "--user", "student-0", "--yes"])
    assert erased.exit_code == 0 and json.loads(erased.output)["conversations"] == 1
    assert json.loads(runner.invoke(args=["privacy", "export", "--issuer", ISSUER, "--user", "student-0"])
                      .output)["courses"] == []
    assert json.loads(runner.invoke(args=["privacy", "export", "--issuer", ISSUER, "--user", "student-1"])
                      .output)["courses"] != []
    loose = runner.invoke(args=["privacy", "retention-set", "--issuer", ISSUER, "--bot", str(bot_id),
                                "--anonymize-days", "120", "--delete-days", "365"])
    assert loose.exit_code != 0 and "shorter" in loose.output
    strict = runner.invoke(args=["privacy", "retention-set", "--issuer", ISSUER, "--bot", str(bot_id),
                                 "--anonymize-days", "10", "--delete-days", "30"])
    assert strict.exit_code == 0 and json.loads(strict.output)["delete_days"] == 30
    notice = tmp_path / "notice.txt"
    notice.write_text("Neuer Hinweis: Löschung nach {delete_days} Tagen.", encoding="utf-8")
    published = runner.invoke(args=["privacy", "consent-set", "--issuer", ISSUER, "--lang", "de",
                                    "--file", str(notice)])
    assert published.exit_code == 0 and json.loads(published.output)["version"] == 1
    purged = runner.invoke(args=["privacy", "purge"])
    assert purged.exit_code == 0 and set(json.loads(purged.output)) >= {"anonymized", "deleted", "bots_deleted"}
    usage = json.loads(runner.invoke(args=["privacy", "usage"]).output)
    assert usage[0]["questions"] == 2 and usage[0]["participants"] == 1
    assert "student-0" not in repr(db.session.scalars(select(AuditEvent.details)).all())


def test_teacher_may_only_tighten_course_retention(ctx: Flask) -> None:
    client = ctx.test_client()
    bot = make_bot()
    headers = bearer(make_session(bot, sub="t-1", roles=("instructor",)))
    url = f"/api/v1/bots/{bot.id}/retention"
    assert client.get(url, headers=headers).get_json()["anonymize_days"] == 90
    looser = client.put(url, headers=headers, json={"anonymize_days": 120, "delete_days": 365})
    assert looser.status_code == 400 and looser.get_json()["error"]["code"] == "invalid_retention"
    stricter = client.put(url, headers=headers, json={"anonymize_days": 14, "delete_days": 60})
    assert stricter.get_json() == {"anonymize_days": 14, "delete_days": 60,
                                   "platform": {"anonymize_days": 90, "delete_days": 365}}
    assert client.put(url, headers=bearer(make_session(bot)), json={}).status_code == 403  # a student
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "retention_changed")).one()
    assert event.actor_role == "instructor" and event.bot_id == bot.id


def test_platform_admin_usage_and_retention_scoped_to_their_platform(ctx: Flask) -> None:
    client = ctx.test_client()
    bot_id, _sessions = seed_course(2)
    other = make_bot("course-x", issuer="https://other.example")
    admin = bearer(make_session(db.session.get(CourseBot, bot_id), sub="admin", roles=("administrator",)))
    instructor = bearer(make_session(db.session.get(CourseBot, bot_id), sub="t-1", roles=("instructor",)))
    usage = client.get("/api/v1/admin/usage", headers=admin).get_json()
    assert [c["bot_id"] for c in usage["courses"]] == [bot_id] and other.id != bot_id
    assert usage["totals"]["questions"] == 2 and "Frage" not in json.dumps(usage)
    assert client.get("/api/v1/admin/usage", headers=instructor).status_code == 403
    changed = client.put("/api/v1/admin/retention", headers=admin, json={"anonymize_days": 30, "delete_days": 180})
    assert changed.status_code == 200 and changed.get_json()["platform"]["delete_days"] == 180
    assert client.put("/api/v1/admin/retention", headers=instructor, json={}).status_code == 403
    assert privacy_ops.platform_retention("https://other.example").delete_days == 365


def test_automatic_purge_runs_with_its_own_context_and_commits(app: Flask) -> None:
    from datetime import timedelta

    with app.app_context():
        bot_id, (student,) = seed_course(1)
        conversation = db.session.scalars(select(ChatSession)).one()
        conversation.updated_at = utcnow() - timedelta(days=400)
        db.session.commit()
    counts = run_purge_once(app)
    assert counts is not None and counts["deleted"] == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(ChatSession.id))) == 0
    before = len(app.before_request_funcs.get(None, []))
    init_purge_scheduler(app)  # tests never start the background thread
    assert len(app.before_request_funcs.get(None, [])) == before
