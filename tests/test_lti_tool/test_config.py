"""Configuration: README documents every key, nothing else reads the environment, secrets are handled safely."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from lti_tool.config import Config, ConfigError, settings_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lti_tool", "course_bots", "retrieval")


def readme_keys() -> set[str]:
    """Keys in the first column of README's configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\|\s*`(COURSEBOTS_[A-Z0-9_]+)`\s*\|", text, flags=re.M))


def test_readme_table_matches_config_fields_both_ways() -> None:
    documented = readme_keys()
    declared = {key for key, _default, _doc in settings_table()}
    assert declared - documented == set(), "settings missing from README's configuration table"
    assert documented - declared == set(), "README documents settings that Config does not have"


def _environment_reads(path: Path) -> list[str]:
    """Places that read the process environment (setting a default for a library, e.g. offline mode, is fine)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in ("environ", "getenv", "environb") for alias in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"):
            continue
        if node.attr in ("getenv", "environb"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif node.attr == "environ":
            parent = parents.get(node)
            writes = (isinstance(parent, ast.Attribute) and parent.attr == "setdefault") or (
                isinstance(parent, ast.Subscript) and isinstance(parent.ctx, (ast.Store, ast.Del)))
            if not writes:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_environment_read_outside_config() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "lti_tool" / "config.py":
                continue
            offenders += _environment_reads(path)
    assert offenders == []


def test_environment_read_detector_fires(tmp_path: Path) -> None:
    sample = ROOT / "tests" / "_env_probe_tmp.py"
    sample.write_text("import os\nX = os.environ.get('A')\nY = os.getenv('B')\nZ = os.environ['C']\n"
                      "os.environ.setdefault('HF_HUB_OFFLINE', '1')\n", encoding="utf-8")
    try:
        assert len(_environment_reads(sample)) == 3
    finally:
        sample.unlink()


def test_defaults_and_parsing(tmp_path: Path) -> None:
    config = Config.from_env({"COURSEBOTS_SESSION_TOKEN_MINUTES": "45",
                              "COURSEBOTS_REGISTRATION_ALLOWED_ISSUERS": "https://a.example/, https://b.example"},
                             instance_path=str(tmp_path))
    assert config.base_url == "http://127.0.0.1:5000"
    assert config.database_url == f"sqlite:///{tmp_path / 'coursebots.sqlite3'}"
    assert config.session_token_minutes == 45
    assert config.registration_allowed_issuers == ("https://a.example", "https://b.example")
    with pytest.raises(Exception):
        config.base_url = "x"  # type: ignore[misc]  # frozen


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="COURSEBOTS_SESSION_TOKEN_MINUTES"):
        Config.from_env({"COURSEBOTS_SESSION_TOKEN_MINUTES": "soon"}, instance_path=str(tmp_path))


def test_quick_start_generates_secrets_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = Config.from_env({}, instance_path=str(tmp_path))
    assert len(first.secret_key) > 40 and len(first.pseudonym_key) > 40
    assert first.secret_key != first.pseudonym_key
    assert "generated" in caplog.text
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    second = Config.from_env({}, instance_path=str(tmp_path))
    assert (second.secret_key, second.pseudonym_key) == (first.secret_key, first.pseudonym_key)
    assert json.loads((tmp_path / "secrets.json").read_text())["secret_key"] == first.secret_key


def test_explicit_secret_wins_over_generated(tmp_path: Path) -> None:
    config = Config.from_env({"COURSEBOTS_SECRET_KEY": "mine"}, instance_path=str(tmp_path))
    assert config.secret_key == "mine" and config.pseudonym_key


def test_postgres_without_secrets_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="COURSEBOTS_SECRET_KEY and COURSEBOTS_PSEUDONYM_KEY must be set"):
        Config.from_env({"COURSEBOTS_DATABASE_URL": "postgresql://db.example/coursebots"},
                        instance_path=str(tmp_path))
    assert not (tmp_path / "secrets.json").exists()


def test_postgres_url_uses_psycopg3(tmp_path: Path) -> None:
    config = Config.from_env({"COURSEBOTS_DATABASE_URL": "postgresql://db.example/x", "COURSEBOTS_SECRET_KEY": "a",
                              "COURSEBOTS_PSEUDONYM_KEY": "b"}, instance_path=str(tmp_path))
    assert config.database_url == "postgresql+psycopg://db.example/x"
