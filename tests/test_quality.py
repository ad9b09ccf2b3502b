"""Code-quality gates a reviewer would otherwise check by hand: types, style, the layout's dependency rule."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lti_tool", "course_bots", "retrieval")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    result = _run("mypy", *PACKAGES)
    assert result.returncode == 0, result.stdout[-4000:]


def test_flake8_is_clean() -> None:
    result = _run("flake8", *PACKAGES, "tests")
    assert result.returncode == 0, result.stdout[-4000:]
