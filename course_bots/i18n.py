"""UI message catalogues (one JSON file per language in ``static/i18n``), shared by templates and scripts."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

CATALOGUE_DIR = Path(__file__).resolve().parent / "static" / "i18n"
LANGUAGES = ("de", "en")


@functools.lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, Any]:
    """The messages of a UI language (English for anything unsupported)."""
    lang = lang if lang in LANGUAGES else "en"
    return dict(json.loads((CATALOGUE_DIR / f"{lang}.json").read_text(encoding="utf-8")))
