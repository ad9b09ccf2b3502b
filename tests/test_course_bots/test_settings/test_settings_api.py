"""Teacher settings: templates fill the prompt, limits hold, every prompt is a version, students are kept out."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from course_bots import backends
from course_bots.llm import catalogue as catalogue_module
from course_bots.materials import jobs as ingest_worker
from course_bots.settings.models import MODE_PROMPTS
from lti_tool.config import Config
from tests.test_course_bots.conftest import bearer, make_bot, make_session


@pytest.fixture
def bots(app: Flask) -> Iterator[dict[str, Any]]:
    with app.app_context():
        bot, other = make_bot(), make_bot("course-2")
        yield {"bot": bot.id, "other": other.id,
               "teacher": bearer(make_session(bot, sub="t1", roles=("instructor",), locale="en")),
               "teacher_de": bearer(make_session(bot, sub="t2", roles=("instructor",), locale="de")),
               "student": bearer(make_session(bot)),
               "other_teacher": bearer(make_session(other, sub="t1", roles=("instructor",)))}


def test_defaults_use_the_tutor_template_in_the_teachers_language(client: FlaskClient, bots: dict[str, Any]) -> None:
    body = client.get(f"/api/v1/bots/{bots['bot']}/settings", headers=bots["teacher_de"]).get_json()
    assert body["settings"]["teaching_mode"] == "tutor"
    assert body["settings"]["system_prompt"] == MODE_PROMPTS["tutor"]["de"]
    assert set(body["templates"]) == {"tutor", "faq", "exam"} and body["models"][0]["key"] == ""


def test_save_prompt_creates_versions_with_role(client: FlaskClient, bots: dict[str, Any]) -> None:
    url = f"/api/v1/bots/{bots['bot']}/settings"
    for prompt in ("First prompt", "Second prompt"):
        response = client.put(url, headers=bots["teacher"], json={"system_prompt": prompt, "temperature": 0.5})
        assert response.status_code == 200
    versions = client.get(url + "/prompts", headers=bots["teacher"]).get_json()["versions"]
    assert [v["prompt"] for v in versions] == ["Second prompt", "First prompt"]
    assert versions[0]["role"] == "instructor"
    assert client.get(url, headers=bots["teacher"]).get_json()["settings"]["temperature"] == 0.5


@pytest.mark.parametrize("change", [{"temperature": 9}, {"max_answer_tokens": 10}, {"teaching_mode": "evil"},
                                    {"model_key": "not-in-catalogue"}, {"name": "x" * 500}])
def test_limits_are_enforced(client: FlaskClient, bots: dict[str, Any], change: dict[str, Any]) -> None:
    response = client.put(f"/api/v1/bots/{bots['bot']}/settings", headers=bots["teacher"], json=change)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_setting"


def test_students_and_other_courses_are_refused(client: FlaskClient, bots: dict[str, Any]) -> None:
    url = f"/api/v1/bots/{bots['bot']}/settings"
    assert client.get(url, headers=bots["student"]).status_code == 403
    assert client.put(url, headers=bots["student"], json={"system_prompt": "x"}).status_code == 403
    assert client.get(url, headers=bots["other_teacher"]).status_code == 403
    assert client.post(f"/api/v1/bots/{bots['bot']}/preview", headers=bots["student"]).status_code == 403


def test_preview_token_is_a_student_session_not_counted(client: FlaskClient, bots: dict[str, Any]) -> None:
    token = client.post(f"/api/v1/bots/{bots['bot']}/preview", headers=bots["teacher"]).get_json()["token"]
    info = client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert info["preview"] is True and info["teacher"] is False
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/bots/{bots['bot']}/settings", headers=headers).status_code == 403


def test_pause_switch_stops_students_with_the_message(client: FlaskClient, bots: dict[str, Any]) -> None:
    client.put(f"/api/v1/bots/{bots['bot']}/settings", headers=bots["teacher"],
               json={"paused": True, "pause_message": "Exam until 12:00"})
    response = client.post(f"/api/v1/bots/{bots['bot']}/chat", headers=bots["student"],
                           json={"question": "hi", "client_id": "p"})
    assert response.status_code == 423 and response.get_json()["error"]["message"] == "Exam until 12:00"


def test_copy_code_copies_settings_materials_faq_once_never_logs(client: FlaskClient, bots: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_worker, "dispatch", lambda ids: None)  # ingestion itself is tested elsewhere
    client.put(f"/api/v1/bots/{bots['bot']}/settings", headers=bots["teacher"],
               json={"system_prompt": "Semester prompt", "name": "KI-Tutor"})
    source = f"/api/v1/bots/{bots['bot']}"
    upload = client.post(source + "/materials", headers=bots["teacher"],
                         data={"file": (io.BytesIO(b"# Week 1\n\nGradient descent."), "week1.md")})
    assert upload.status_code in (200, 201), upload.get_data(as_text=True)
    client.post(source + "/faq", headers=bots["teacher"], json={"question": "Exam date?", "answer": "July 3"})
    code = client.post(f"/api/v1/bots/{bots['bot']}/copy-code", headers=bots["teacher"]).get_json()["code"]
    target = f"/api/v1/bots/{bots['other']}"
    assert client.post(target + "/copy-from", headers=bots["other_teacher"], json={"code": code}).status_code == 200
    copied = client.get(target + "/settings", headers=bots["other_teacher"]).get_json()["settings"]
    assert copied["system_prompt"] == "Semester prompt" and copied["name"] == "KI-Tutor"
    files = client.get(target + "/materials", headers=bots["other_teacher"]).get_json()["materials"]
    assert [m["filename"] for m in files] == ["week1.md"]
    faq = client.get(target + "/faq", headers=bots["other_teacher"]).get_json()["faq"]
    assert [(f["question"], f["answer"]) for f in faq] == [("Exam date?", "July 3")]
    conversations = client.get(target + "/conversations", headers=bots["other_teacher"]).get_json()
    assert conversations["conversations"] == []
    again = client.post(target + "/copy-from", headers=bots["other_teacher"], json={"code": code})
    assert again.status_code == 400 and again.get_json()["error"]["code"] == "invalid_copy_code"


def test_delete_bot_needs_confirmation(client: FlaskClient, bots: dict[str, Any]) -> None:
    url = f"/api/v1/bots/{bots['bot']}"
    assert client.delete(url, headers=bots["teacher"], json={}).status_code == 400
    assert client.delete(url, headers=bots["student"], json={"confirm": "delete"}).status_code == 403
    assert client.delete(url, headers=bots["teacher"], json={"confirm": "delete"}).status_code == 204


def test_catalogue_file_offers_entries_allowed_for_the_platform(tmp_path: Any) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nkey = "qwen"\nlabel = "Qwen 7B (local)"\nkind = "local"\nmodel = "qwen"\n'
                    'context_window = 8192\nbase_url = "http://gpu:8001/v1"\n\n'
                    '[[models]]\nkey = "gw"\nlabel = "Gateway"\nkind = "external"\nmodel = "gpt"\n'
                    'context_window = 8192\nbase_url = "https://gw.example/v1"\nplatforms = ["https://other"]\n',
                    encoding="utf-8")
    config = Config(model_catalogue=str(path))
    entries = backends.catalogue(config, "https://moodle.example.edu")
    assert [e.key for e in entries] == ["qwen"] and entries[0].backend == "openai" and not entries[0].external
    assert [e.key for e in backends.catalogue(config, "https://other")] == ["qwen", "gw"]
    assert backends.entry_for(config, "missing").key == ""  # unknown keys fall back to the default model
    assert backends.catalogue(Config(model_catalogue=str(tmp_path / "nope.toml"))) == ()


def test_catalogue_file_is_parsed_once_and_again_after_an_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    path = tmp_path / "models.toml"
    entry = '[[models]]\nkey = "{key}"\nlabel = "L"\nkind = "local"\nmodel = "/m"\ncontext_window = 2048\n'
    path.write_text(entry.format(key="first"))
    calls: list[str] = []
    real = catalogue_module.load_catalogue

    def counting(p: str) -> Any:
        calls.append(str(p))
        return real(p)

    monkeypatch.setattr(catalogue_module, "load_catalogue", counting)
    backends.forget_backends()
    config = Config(model_catalogue=str(path))
    for _ in range(3):
        assert [e.key for e in backends.catalogue(config)] == ["first"]
    assert len(calls) == 1
    path.write_text(entry.format(key="second"))
    os.utime(path, ns=(1, os.stat(path).st_mtime_ns + 1_000_000))
    assert [e.key for e in backends.catalogue(config)] == ["second"] and len(calls) == 2
    backends.forget_backends()
