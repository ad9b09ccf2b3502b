"""Code-quality gates a reviewer would otherwise check by hand: types, style, the layout's dependency rule."""
from __future__ import annotations

import ast
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


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_course_bots_reaches_into_lti_tool_only_through_its_contracts() -> None:
    allowed = {"lti_tool", "lti_tool.context", "lti_tool.extensions", "lti_tool.config"}
    offenders = {}
    for path in (ROOT / "course_bots").rglob("*.py"):
        bad = {name for name in _imports(path) if name.startswith("lti_tool") and name not in allowed}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_llm_package_runs_without_flask_or_sqlalchemy() -> None:
    offenders = {}
    for path in (ROOT / "course_bots" / "llm").rglob("*.py"):
        bad = {name for name in _imports(path)
               if name.split(".")[0] in ("flask", "flask_sqlalchemy", "sqlalchemy", "lti_tool")
               or name.startswith("course_bots.") and not name.startswith("course_bots.llm")}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_lti_tool_imports_course_bots_only_inside_create_app() -> None:
    offenders = []
    for path in (ROOT / "lti_tool").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: create_app imports the product lazily
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if module and module.startswith("course_bots"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
