"""The layout of docs/ARCHITECTURE.md holds: import-linter's contracts, the rooms at the top of course_bots, sizes."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lti_tool", "course_bots", "retrieval")
FEATURES = ("admin", "chat", "evaluation", "materials", "privacy", "quotas", "settings")
# What every feature uses stays at the top of course_bots, and nothing else does.
TOP_MODULES = {
    "__init__",
    "backends",  # which model answers a bot: the catalogue and cached backends (settings, chat, admin)
    "bots",  # the course-bot record's operations and the "this session's bot" guard
    "errors",  # ServiceError, the one service error every feature subclasses, and its one API handler
    "i18n",  # message catalogues
    "launch",  # the launch handler
    "models",  # the course-bot record
    "pages",  # templates, static files, the page's session API
    "plugin",  # lists the features
    "privacy_rules",  # pseudonyms, labels, retention arithmetic, PII scrubbing
    "render",  # markdown -> sanitized HTML
    "schemas",  # the JSON API's request schemas
    "session_api",  # /api/v1/session
    "worker",  # the RQ job entry point (its path is in jobs already queued in Redis)
}
MAX_LINES = 400


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), str(cwd / "setup.cfg"), "--no-cache"], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(cwd), "PATH": ""})


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages and setup.cfg, to plant violations in."""
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    shutil.copy(ROOT / "setup.cfg", root / "setup.cfg")
    return root


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("retrieval/types.py", "import course_bots.models", "retrieval is a pure library"),
    ("course_bots/llm/base.py", "import flask", "course_bots.llm knows neither Flask"),
    ("course_bots/chat/api.py", "from course_bots.materials import pipeline", "features import each other"),
    ("course_bots/privacy/consent.py", "import lti_tool.models", "the product reaches into lti_tool"),
    ("course_bots/settings/operations.py", "from course_bots.chat import operations", "no import cycle"),
])
def test_a_planted_forbidden_import_or_cycle_breaks_a_contract(tree_copy: Path, module: str, line: str,
                                                               broken: str) -> None:
    path = tree_copy / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + f"\n{line}  # planted\n", encoding="utf-8")
        result = _lint_imports(tree_copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    broken_part = result.stdout.split("Broken contracts", 1)[-1]
    assert broken in " ".join(broken_part.split()), result.stdout[-4000:]


def test_the_top_of_course_bots_holds_only_what_every_feature_uses() -> None:
    top = {p.stem for p in (ROOT / "course_bots").glob("*.py")}
    assert top == TOP_MODULES
    packages = {p.name for p in (ROOT / "course_bots").iterdir() if (p / "__init__.py").exists()}
    assert packages == {*FEATURES, "llm"}
    for feature in FEATURES:
        assert (ROOT / "course_bots" / feature / "feature.py").exists(), f"{feature} registers itself"


def test_no_module_exceeds_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for package in PACKAGES for p in (ROOT / package).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("feature", FEATURES)
def test_each_feature_imports_alone(feature: str) -> None:
    code = f"import course_bots.{feature}.feature"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
