"""deploy/Dockerfile without a container runtime: what it copies exists, its entrypoint is the tested script."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "deploy" / "Dockerfile").read_text()


def test_every_copied_path_exists_in_the_build_context() -> None:
    copies = re.findall(r"^COPY\s+(.+?)\s+\S+$", TEXT, re.MULTILINE)
    assert copies
    for sources in copies:
        for source in sources.split():
            assert (ROOT / source).exists(), source


def test_entrypoint_and_default_role() -> None:
    entrypoint = json.loads(re.search(r"^ENTRYPOINT\s+(\[.*\])$", TEXT, re.MULTILINE).group(1))  # type: ignore
    assert entrypoint == ["/app/deploy/entrypoint.sh"] and (ROOT / "deploy" / "entrypoint.sh").exists()
    assert json.loads(re.search(r"^CMD\s+(\[.*\])$", TEXT, re.MULTILINE).group(1)) == ["web"]  # type: ignore
    assert re.search(r"^USER\s+coursebots$", TEXT, re.MULTILINE)  # never root
    assert "GUNICORN_BIND=0.0.0.0:8000" in TEXT and re.search(r"^EXPOSE 8000$", TEXT, re.MULTILINE)
