"""The child that reads an uploaded file starts without the tool's secrets, and still reads files (OCR included)."""
from __future__ import annotations

import os
import sys

import pytest
from flask import Flask

from course_bots.materials import parse_sandbox

SECRETS = {"COURSEBOTS_SECRET_KEY": "probe-secret-key-4711", "COURSEBOTS_PSEUDONYM_KEY": "probe-pseudonym-key",
           "COURSEBOTS_DATABASE_URL": "postgresql://app:probe-password@db/coursebots",
           "COURSEBOTS_GATEWAY_KEY": "sk-probe"}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/environ")


def child_environment(app: Flask) -> dict[str, str]:
    """The environment a parser child started with, as the probe parser reports it."""
    with app.app_context():
        document = parse_sandbox.parse_material(b"x", "probe.txt", "text/plain", "probe")
    return dict(section.text.partition("=")[::2] for section in document.sections)


def test_the_parser_child_sees_no_secret(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("TESSDATA_PREFIX", "/usr/share/tesseract-ocr/5/tessdata")
    monkeypatch.setenv("OMP_THREAD_LIMIT", "1")
    monkeypatch.setenv("UNRELATED_TOKEN", "probe-unrelated")
    monkeypatch.setattr(parse_sandbox, "LOADER", "tests.test_course_bots.test_materials.env_probe:environment")
    seen = child_environment(make_app())
    assert not [name for name in seen if name.startswith("COURSEBOTS_")]
    assert not [value for value in seen.values() if "probe" in value]
    # what tesseract, the locale and the thread limits need still arrives
    assert seen["PATH"] and seen["LC_ALL"] == "C.UTF-8" and seen["TESSDATA_PREFIX"].endswith("tessdata")
    assert seen["OMP_THREAD_LIMIT"] == "1"


def test_the_environment_is_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = {"PATH": "/usr/bin", "HOME": "/home/app", "LC_CTYPE": "de_DE.UTF-8", "OMP_THREAD_LIMIT": "1"}
    refused = {"AWS_SECRET_ACCESS_KEY": "x", "COURSEBOTS_REDIS_URL": "redis://:pw@r", "HF_TOKEN": "y"}
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in {**allowed, **refused}.items():
        monkeypatch.setenv(name, value)
    assert parse_sandbox.child_environment() == allowed


def test_files_are_still_read_with_secrets_in_the_parent(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with make_app().app_context():
        document = parse_sandbox.parse_material("# Osmose\n\nWasser wandert.".encode(), "notes.md", "text/markdown",
                                                "notes")
    assert "Wasser wandert." in document.text
