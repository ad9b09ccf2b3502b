"""Shared fixtures: the app on SQLite or a fresh PostgreSQL database, its client and CLI runner.

Under ``CI=true`` a test that needs PostgreSQL, Redis or Chromium fails instead of skipping.
"""
from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from lti_tool import create_app
from lti_tool.config import Config
from lti_tool.extensions import db

IN_CI = os.environ.get("CI", "").lower() == "true"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-screenshots`` refreshes docs/screenshots/ from the browser tests."""
    parser.addoption("--update-screenshots", action="store_true", default=False,
                     help="write the browser tests' screenshots into docs/screenshots/")


def unavailable(what: str) -> None:
    """Skip locally, but fail under CI=true: CI must exercise the production paths."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} not available")


def need_tesseract() -> None:
    """Skip locally without tesseract; .ci/run installs it, so under CI=true its absence fails."""
    import shutil

    if shutil.which("tesseract") is None:
        unavailable("tesseract (apt-get install tesseract-ocr tesseract-ocr-deu)")


def scanned_pdf(pages: list[list[str] | None]) -> bytes:
    """A PDF whose pages are pictures of text lines (None: a page with a real text layer instead)."""
    import io

    import pypdfium2 as pdfium
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    def text_pdf(lines: list[str]) -> bytes:
        buffer = io.BytesIO()
        page = canvas.Canvas(buffer, pagesize=A4)
        for row, line in enumerate(lines):
            page.drawString(72, 760 - 16 * row, line)
        page.showPage()
        page.save()
        return buffer.getvalue()

    buffer = io.BytesIO()
    out = canvas.Canvas(buffer, pagesize=A4)
    for lines in pages:
        if lines is None:
            out.drawString(72, 760, "This page has a real text layer about sorting algorithms.")
        else:
            source = pdfium.PdfDocument(text_pdf(lines))
            image = source[0].render(scale=200 / 72).to_pil()
            source.close()
            out.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])
        out.showPage()
    out.save()
    return buffer.getvalue()


def port_open(host: str, port: int) -> bool:
    """Whether something listens on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the PostgreSQL server tests may create databases on."""
    url = Config.from_env(instance_path="/nonexistent").test_database_url or DEFAULT_PG_URL
    parts = urlsplit(url)
    if not port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        unavailable(f"PostgreSQL at {parts.hostname}:{parts.port}")
    return url


@pytest.fixture(scope="session")
def postgres_database(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test run (dropped afterwards)."""
    import psycopg

    name = f"coursebots_test_{secrets.token_hex(4)}"
    admin = postgres_server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis server for tests (database 15, flushed by the tests that use it)."""
    if not port_open("127.0.0.1", 6379):
        unavailable("Redis at 127.0.0.1:6379")
    return DEFAULT_REDIS_URL


def make_config(tmp_path: Path, database_url: str | None = None, **overrides: object) -> Config:
    """A test configuration with fixed secrets, its own instance folder and the fake embedder (unless named)."""
    values: dict[str, object] = dict(
        base_url="http://localhost:5000", secret_key="test-secret-key-" + "x" * 32,
        pseudonym_key="test-pseudonym-key-" + "y" * 32, testing=True,
        embedding_model="hashing",  # tests of a real model name it; the rest stay fast
        database_url=database_url or f"sqlite:///{tmp_path / 'test.sqlite3'}",
        instance_path=str(tmp_path / "instance"))
    values.update(overrides)
    return Config(**values).resolved(str(tmp_path / "instance"))  # type: ignore[arg-type]


def reset_postgres(url: str) -> None:
    """Empty the test database: drop and recreate its public schema."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app, migrated to head, on SQLite (or PostgreSQL with ``indirect`` parametrization)."""
    from flask_migrate import upgrade

    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_database")
        reset_postgres(url)
    application = create_app(make_config(tmp_path, url))
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build an extra app (not migrated) with configuration overrides."""

    def factory(**overrides: object) -> Flask:
        return create_app(make_config(tmp_path, **overrides))  # type: ignore[arg-type]

    return factory


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner of the app (``flask --app lti_tool ...`` commands)."""
    return app.test_cli_runner()
