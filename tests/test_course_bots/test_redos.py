"""No regular expression of ours can backtrack catastrophically: a static ReDoS analyser (regexploit) checks them all.

Every compiled pattern at module level in ``course_bots``, ``retrieval`` and ``lti_tool`` (alone or in a tuple or
list), plus the ones the scrubber builds at run time, is analysed twice: as written, and followed by a character
that fails. regexploit only sees a backtracking trap when something after the repetition can fail; a trailing
lookahead, ``$`` or the end of a search is such a thing, but regexploit does not model it (the phone pattern that
froze the service for 12-16 s passes the plain check and fails the second one). Patterns on RE2 are linear by
construction; they are checked as well, translated to Python syntax, so that they stay safe on any engine.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import warnings

import pytest
import re2

with warnings.catch_warnings():  # regexploit reads patterns with sre_parse, deprecated as a public module
    warnings.simplefilter("ignore", DeprecationWarning)
    from regexploit.ast.sre import SreOpParser
    from regexploit.redos import find

from course_bots import privacy_rules as privacy_scrub
from lti_tool.config import Config, ConfigError

PACKAGES = ("course_bots", "retrieval", "lti_tool")
RE2_PATTERN = type(re2.compile(""))
# The scrubber's RE2 spellings of Python's Unicode classes, back to Python syntax (see privacy_scrub.unicode_re2).
BACK_TO_PYTHON = [(r"\t-\r\x{1c}-\x{1f}\x{85}\p{Z}", r"\s"), (r"\p{L}\p{N}_", r"\w"), (r"\p{Nd}", r"\d")]
OTHER_RE2_ESCAPES = re.compile(r"\\[pP]\{\w+\}|\\[pP][A-Z]|\\x\{([0-9a-fA-F]+)\}")
LEADING_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")


def python_syntax(pattern: Any) -> tuple[str, int]:
    """The pattern's source in Python syntax and its flags, for the analyser."""
    if isinstance(pattern, RE2_PATTERN):
        source = pattern.pattern
        for spelled, python in BACK_TO_PYTHON:
            source = source.replace(spelled, python)
        return OTHER_RE2_ESCAPES.sub(lambda m: f"\\U{int(m.group(1), 16):08x}" if m.group(1) else r"\w", source), 0
    source = pattern.pattern
    if isinstance(source, bytes):
        source = source.decode("latin-1")
    return source, pattern.flags & ~re.UNICODE


def redos_findings(source: str, flags: int = 0) -> list[str]:
    """regexploit's findings (cubic or worse) for ``source``, also when a failing character follows it."""
    flag_prefix = LEADING_FLAGS.match(source)
    prefix = flag_prefix.group(0) if flag_prefix else ""
    body = source[len(prefix):]
    findings = []
    for variant in (source, f"{prefix}(?:{body})\x00"):
        for redos in find(SreOpParser().parse_sre(variant, flags)):
            if redos.starriness > 2:
                findings.append(f"starriness {redos.starriness}, e.g. {redos.example()}")
    return findings


def module_patterns() -> Iterator[tuple[str, Any]]:
    """Every compiled pattern bound at module level in our packages, with where it lives."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                items = value if isinstance(value, (tuple, list)) else (value,)
                for index, item in enumerate(items):
                    if isinstance(item, (re.Pattern, RE2_PATTERN)):
                        yield f"{info.name}.{name}" + (f"[{index}]" if items is value else ""), item


def runtime_patterns() -> Iterator[tuple[str, Any]]:
    """The patterns the scrubber builds per launch: name patterns for Latin, Cyrillic and Chinese names."""
    tokens = privacy_scrub.name_variants(("Anna-Lena Müller", "Jan van der Berg", "Иванов", "王小明", "O'Brien"))
    yield "privacy_scrub._name_regex(sample names)", privacy_scrub._name_regex(tokens)


def vulnerable() -> dict[str, list[str]]:
    """Where the analyser finds a backtracking trap, and what it finds."""
    found: dict[str, list[str]] = {}
    for where, pattern in [*module_patterns(), *runtime_patterns()]:
        findings = redos_findings(*python_syntax(pattern))
        if findings:
            found[where] = findings
    return found


def test_every_pattern_passes_the_static_redos_analyser() -> None:
    patterns = dict(module_patterns())
    assert len(patterns) > 40 and "course_bots.privacy_rules._PHONE_RES[1]" in patterns, sorted(patterns)
    assert vulnerable() == {}


@pytest.mark.parametrize("pattern", [
    r"(\d+)*x",  # nested repetition: exponential
    r"^(a+)+$",
    # the phone pattern that froze the service: caught only through the failing character after it
    r"(?<![\w.,])\(?0\d{1,5}\)?(?:[ \t]?[/-][ \t]?|[ \t])?\d{2,}(?:[ \t.-]?\d{2,})*(?![\w,])",
    r"(?i)\bmatr\.?\s*[:#.]?\s*(?:ist|is|lautet)?\s*\d+",  # three runs of spaces in a row: cubic
])
def test_the_analyser_finds_planted_traps(pattern: str) -> None:
    assert redos_findings(pattern)


def test_a_planted_module_pattern_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(privacy_scrub, "_PLANTED", (re.compile(r"(\w+\s?)*$"),), raising=False)
    monkeypatch.setattr(privacy_scrub, "_PLANTED_RE2", re2.compile(r"([\p{L}\p{N}_]+)+x"), raising=False)
    assert set(vulnerable()) == {"course_bots.privacy_rules._PLANTED[0]", "course_bots.privacy_rules._PLANTED_RE2"}


@pytest.mark.parametrize("pattern", [r"(?<![A-Z])MAT\d{5}", r"(\d)\1{6}", r"\d{7}(?=\b)"])
def test_an_extra_pattern_that_could_backtrack_is_refused_at_start(pattern: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"COURSEBOTS_PII_EXTRA_PATTERNS": json.dumps([r"\bMAT-\d{4}\b", pattern])})
    message = str(refused.value)
    assert "COURSEBOTS_PII_EXTRA_PATTERNS" in message and repr(pattern) in message and "RE2" in message


def test_an_extra_pattern_runs_in_linear_time_even_if_nested(tmp_path: Path) -> None:
    # RE2 accepts (\d+)+x and runs it without backtracking (Python's engine would not finish on the input below).
    config = Config.from_env({"COURSEBOTS_PII_EXTRA_PATTERNS": json.dumps([r"(\d+)+x"])}, instance_path=str(tmp_path))
    scrubber = privacy_scrub.Scrubber(extra_patterns=config.pii_extra_patterns)
    assert scrubber.scrub("1" * 50_000 + "y") == "1" * 50_000 + "y"
    assert scrubber.scrub("ab 123x cd") == "ab [id] cd"
