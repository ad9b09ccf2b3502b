"""The operator command streams a completion through any backend: ``flask --app lti_tool llm chat``."""
from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from course_bots.llm.tiny import build_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-llm")
    build_tiny_model(str(path))
    return path


def test_chat_extractive_says_no_model_answers(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["llm", "chat", "--backend", "extractive", "What is BM25?"])
    assert result.exit_code in (0, 1)
    assert result.output.strip()


def test_chat_local_streams_from_a_locally_built_model(runner: FlaskCliRunner, tiny_model: Path) -> None:
    result = runner.invoke(args=["llm", "chat", "--backend", "local", "--model", str(tiny_model),
                                 "--max-tokens", "8", "Hello"])
    assert result.exit_code == 0, result.output
    assert "answer tokens" in result.output


def test_chat_openai_requires_base_url(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["llm", "chat", "--backend", "openai", "--model", "x", "Hi"])
    assert result.exit_code == 2 and "--base-url" in result.output


def test_chat_openai_server_down_fails_clearly(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["llm", "chat", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                                 "--model", "m", "--timeout", "3", "Hi"])
    assert result.exit_code == 1 and "error" in result.output
