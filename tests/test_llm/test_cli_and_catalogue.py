"""The pieces the CLI wires to (backends by name, streaming to a terminal), the catalogue, extractive answers."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_bots.llm.base import ChatBackend, DoneEvent, GenerationParams, Passage, TokenEvent, collect
from course_bots.llm.catalogue import (CatalogueError, ModelEntry, default_entry, entry_from_file, load_catalogue,
                                       parse_catalogue)
from course_bots.llm.cli_support import backend_for_entry, build_backend, stream_to
from course_bots.llm.extractive import ExtractiveBackend, fixed_text_language
from course_bots.llm.openai_backend import OpenAIBackend
from course_bots.llm.server import BackgroundServer
from course_bots.llm.sources import format_source_block
from course_bots.llm.tokens import estimate_messages

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = """
[defaults]
max_new_tokens = 256

[[models]]
key = "qwen-local"
label = "Qwen 2.5 7B (university GPU)"
kind = "local"
base_url = "http://gpu1:8001/v1"
model = "Qwen2.5-7B-Instruct"
context_window = 32768
platforms = ["https://moodle.uni.example"]

[[models]]
key = "gateway"
label = "Institution gateway"
kind = "external"
base_url = "https://llm.example/v1"
model = "gpt-oss"
context_window = 8192
api_key_env = "COURSEBOTS_GATEWAY_KEY"
"""


def test_catalogue_loads_toml_and_json(tmp_path: Path) -> None:
    toml_file = tmp_path / "models.toml"
    toml_file.write_text(CATALOGUE)
    catalogue = load_catalogue(toml_file)
    assert [e.key for e in catalogue.entries] == ["qwen-local", "gateway"] and catalogue.default
    local = catalogue.get("qwen-local")
    assert not local.external and local.max_answer_tokens == 256 and not local.in_process
    assert local.backend == "openai" and catalogue.get("gateway").external
    assert [e.key for e in catalogue.allowed_for("https://moodle.uni.example")] == ["qwen-local", "gateway"]
    assert [e.key for e in catalogue.allowed_for("https://other.example")] == ["gateway"]
    assert local.token_counter() is estimate_messages
    json_file = tmp_path / "models.json"
    json_file.write_text(json.dumps({"models": [{"key": "k", "label": "L", "kind": "local", "model": "/m",
                                                 "context_window": 2048}]}))
    assert load_catalogue(json_file).get("k").in_process


def test_one_entry_type_for_the_default_model_and_the_file() -> None:
    plain = default_entry()
    assert isinstance(plain, ModelEntry) and plain.backend == "extractive" and plain.extractive and plain.key == ""
    served = default_entry(model="qwen", base_url="http://gpu:8001/v1", api_key="sk-secret", context_window=8192)
    assert served.backend == "openai" and served.label == "qwen" and not served.extractive
    filed = entry_from_file({"key": "g", "label": "G", "kind": "external", "model": "m", "context_window": 4096,
                             "base_url": "https://gw.example/v1", "api_key_env": "COURSEBOTS_GW_KEY"})
    assert isinstance(filed, ModelEntry) and filed.external and filed.max_answer_tokens == 512
    for entry in (served, filed):
        text = json.dumps(entry.public())
        assert set(entry.public()) == {"key", "label", "external", "extractive", "context_window",
                                       "max_answer_tokens"}
        assert "http" not in text and "sk-secret" not in text and "COURSEBOTS_" not in text
    assert "sk-secret" not in repr(served)


@pytest.mark.parametrize("entry, message", [
    ({"key": "a", "label": "A", "kind": "cloud", "model": "m", "context_window": 10}, "kind must be"),
    ({"key": "a", "label": "A", "kind": "external", "model": "m", "context_window": 4096}, "needs a base_url"),
    ({"key": "a", "label": "A", "kind": "local", "model": "m"}, "'context_window' is required"),
    ({"key": "a", "label": "A", "kind": "local", "model": "m", "context_window": 100, "max_new_tokens": 200},
     "smaller than context_window"),
    ({"key": "a", "label": "A", "kind": "local", "model": "m", "context_window": 100, "api_key": "s3cret"},
     "unknown field"),
])
def test_catalogue_rejects_invalid_entries(entry: dict[str, object], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue({"models": [entry]})


def test_catalogue_entry_builds_openai_backend_with_fallback(tmp_path: Path) -> None:
    catalogue = parse_catalogue({"models": [{"key": "g", "label": "G", "kind": "external", "context_window": 4096,
                                             "model": "m", "base_url": "http://127.0.0.1:9/v1"}]})
    backend = backend_for_entry(catalogue.get("g"))
    assert isinstance(backend, ChatBackend) and backend.name == "openai+fallback"


def test_build_backend_by_kind(model_server: BackgroundServer) -> None:
    assert isinstance(build_backend("openai", "tiny", model_server.base_url), OpenAIBackend)
    assert isinstance(build_backend("extractive"), ExtractiveBackend)
    with pytest.raises(ValueError):
        build_backend("openai", "tiny")
    with pytest.raises(ValueError):
        build_backend("nonsense")


def test_stream_to_writes_tokens_as_they_come(model_server: BackgroundServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = stream_to(build_backend("openai", "tiny", model_server.base_url), "Hallo", out, max_new_tokens=5, err=err)
    assert code == 0 and out.getvalue().strip() and "answer tokens" in err.getvalue()
    out = io.StringIO()
    assert stream_to(build_backend("openai", "tiny", "http://127.0.0.1:9/v1", retries=0), "x", out, err=out) == 1
    assert "error unavailable" in out.getvalue()


def test_extractive_quotes_passages_in_german_and_english() -> None:
    filler = "Hier steht etwas anderes. " * 40
    passages = (Passage(1, "Skript.pdf, page 2", filler + "Ein Eigenwert skaliert den Eigenvektor. " + filler),
                Passage(2, "Folien.pptx, slide 5", "Die Klausur ist am Freitag."))
    backend = ExtractiveBackend()
    german = collect(backend.stream([{"role": "user", "content": "Was ist ein Eigenwert?"}],
                                    GenerationParams(sources=passages)))
    assert german.text.startswith("Gerade antwortet kein Sprachmodell")
    assert "Ein Eigenwert skaliert den Eigenvektor." in german.text, "the sentence matching the question is quoted"
    assert "### Skript.pdf, page 2 [1]\n\nEin Eigenwert" in german.text and len(german.text) < 1200  # file as heading
    prompt = "Sources:\n\n" + "\n\n".join(format_source_block(p) for p in passages) + "\n\nQuestion: When is it?"
    english = list(backend.stream([{"role": "user", "content": prompt}], GenerationParams()))
    assert sum(isinstance(e, TokenEvent) for e in english) > 5 and isinstance(english[-1], DoneEvent)
    text = collect(english).text
    assert text.startswith("No language model is answering") and "[2]" in text
    assert "no passage" in collect(backend.stream([{"role": "user", "content": "Why?"}], GenerationParams())).text
    assert fixed_text_language("Wie funktioniert das?") == "de" and fixed_text_language("How does it work?") == "en"
    # One detector (retrieval's): other scripts and thin evidence get the English fixed texts.
    assert fixed_text_language("什么是特征值？") == "en" and fixed_text_language("Eigenwert?") == "en"
    assert fixed_text_language("Wann ist die Klausur über Eigenwerte?") == "de"


def test_llm_package_runs_without_flask_sqlalchemy_or_eager_torch() -> None:
    code = ("import sys; import course_bots.llm.server, course_bots.llm.cli_support, course_bots.llm.catalogue, "
            "course_bots.llm.openai_backend, course_bots.llm.extractive, course_bots.llm.__main__; "
            "bad = [m for m in ('flask', 'sqlalchemy', 'torch', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_module_command_chats_extractively() -> None:
    result = subprocess.run([sys.executable, "-m", "course_bots.llm", "chat", "--backend", "extractive",
                             "Was steht im Skript?"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "kein Sprachmodell" in result.stdout
