"""retrieval/ is a pure library: no module in it imports Flask or the product packages."""
from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"flask", "lti_tool", "course_bots", "flask_sqlalchemy", "sqlalchemy"}
ROOT = Path(__file__).resolve().parents[2] / "retrieval"


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_imports_flask_or_the_product() -> None:
    files = sorted(ROOT.rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f.relative_to(ROOT)): sorted(_imported(ast.parse(f.read_text())) & FORBIDDEN)
                 for f in files}
    assert {f: names for f, names in offenders.items() if names} == {}


def test_the_rule_detects_a_violation() -> None:
    assert _imported(ast.parse("from flask import g\nimport course_bots.models\n")) & FORBIDDEN == {
        "flask", "course_bots"}
