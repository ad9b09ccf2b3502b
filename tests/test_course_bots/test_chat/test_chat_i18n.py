"""UI texts come only from the de/en catalogues: same keys in both, every key used exists, no literal text."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "course_bots"
CATALOGUES = {lang: json.loads((PACKAGE / "static" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
              for lang in ("de", "en")}
TEMPLATES = sorted((PACKAGE / "templates" / "course_bots").glob("*.html"))
SCRIPTS = sorted((PACKAGE / "static").glob("*.js"))


def test_catalogues_have_the_same_non_empty_keys() -> None:
    assert set(CATALOGUES["de"]) == set(CATALOGUES["en"])
    assert all(isinstance(v, str) and v.strip() for c in CATALOGUES.values() for v in c.values())
    assert CATALOGUES["de"]["send"] != CATALOGUES["en"]["send"]


def test_every_used_key_exists() -> None:
    used: set[str] = set()
    for path in TEMPLATES:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bT\.(\w+)", text))
        used |= {f"tab_{k}" for k in re.findall(r'"(\w+)"', "".join(re.findall(r"\{% for key in \[(.*?)\]", text)))}
    for path in SCRIPTS:
        used |= set(re.findall(r"\bt\.(\w+)", path.read_text(encoding="utf-8")))
    used.discard("lang")
    assert used - set(CATALOGUES["en"]) == set()


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_literal_text(path: Path) -> None:
    text = re.sub(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", "", text, flags=re.S)
    # Commands and Moodle's own (English) labels, marked lang="en" for screen readers, are quoted, not translated.
    text = re.sub(r"<(code|pre)\b.*?</\1>", "", text, flags=re.S)
    text = re.sub(r"<(\w+)\b[^>]*\blang=\"en\"[^>]*>.*?</\1>", "", text, flags=re.S)
    text = text.replace("CourseBots", "")  # the product name is not translated
    visible = [t.strip() for t in re.findall(r">([^<]+)<", text) if re.search(r"[A-Za-zÄÖÜäöü]{2,}", t)]
    assert visible == []
