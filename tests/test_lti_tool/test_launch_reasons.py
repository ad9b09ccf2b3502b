"""The rejection vocabulary: one documented set of codes for pages, logs and metrics."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lti_tool import registration
from lti_tool.reasons import REASONS, LaunchRejected

DOC = Path(__file__).resolve().parents[2] / "docs" / "LTI.md"


def documented_codes() -> dict[str, int]:
    """Code -> HTTP status from the tables in docs/LTI.md."""
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.M)}


def test_every_launch_reason_is_documented_with_its_status() -> None:
    documented = documented_codes()
    assert {code: r.status for code, r in REASONS.items()}.items() <= documented.items()


def test_registration_reasons_are_part_of_the_one_vocabulary() -> None:
    assert registration.REASONS is REASONS
    assert {code for code in REASONS if code.startswith("registration_")} <= set(documented_codes())


def test_undocumented_code_cannot_be_raised() -> None:
    with pytest.raises(ValueError):
        LaunchRejected("something_new")
