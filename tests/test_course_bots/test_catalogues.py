"""The message catalogues: one file per language, the same keys in each, and German in one form of address."""
from __future__ import annotations

import json
import re
import string
from types import SimpleNamespace
from typing import Any, Callable, cast

import pytest
from flask import Flask

from course_bots import i18n
from course_bots.chat import operations as chat
from course_bots.chat import prompting
from course_bots.errors import ServiceError, error_response
from course_bots.materials.messages import error_text
from course_bots.privacy import consent
from lti_tool.config import Config, ConfigError
from lti_tool.context import SessionToken
from retrieval.types import Chunk, Locator

DU_WORDS = re.compile(r"\b(du|dich|dir|dein|deine|deinen|deinem|deiner|deines|euch|euer|eure|euren|eurem|eurer)\b",
                      re.IGNORECASE)
SIE_WORDS = re.compile(r"\b(Sie|Ihnen|Ihr|Ihre|Ihren|Ihrem|Ihrer|Ihres)\b")  # capitalised: the formal address


def _placeholders(message: str) -> set[str]:
    """The ``{names}`` a message fills in."""
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_every_catalogue_has_the_same_keys() -> None:
    english, sie, du = i18n.catalogue("en"), i18n.catalogue("de", "sie"), i18n.catalogue("de", "du")
    assert set(english) == set(sie) == set(du)
    overrides = json.loads((i18n.CATALOGUE_DIR / "de-du.json").read_text(encoding="utf-8"))
    assert set(overrides) <= set(sie) and overrides  # du only overrides what addresses the user
    for key in sie:
        assert _placeholders(sie[key]) == _placeholders(du[key]), key
        assert _placeholders(sie[key]) <= _placeholders(english[key]) | {"max_upload_mb"}, key


@pytest.mark.parametrize("key", sorted(i18n.catalogue("de", "sie")))
def test_the_sie_catalogue_never_says_du(key: str) -> None:
    assert not DU_WORDS.findall(i18n.catalogue("de", "sie")[key])


@pytest.mark.parametrize("key", sorted(i18n.catalogue("de", "du")))
def test_the_du_catalogue_never_says_sie(key: str) -> None:
    assert not SIE_WORDS.findall(i18n.catalogue("de", "du")[key])


def test_the_form_of_address_is_configured_and_checked() -> None:
    assert Config().german_address == "sie"
    assert Config.from_env({"COURSEBOTS_GERMAN_ADDRESS": "Du"}, instance_path="/tmp").german_address == "du"
    with pytest.raises(ConfigError, match="COURSEBOTS_GERMAN_ADDRESS"):
        Config.from_env({"COURSEBOTS_GERMAN_ADDRESS": "ihr"}, instance_path="/tmp")


def test_outside_an_app_german_is_formal() -> None:
    assert i18n.configured_address() == "sie"
    assert i18n.messages("de")["question_label"] == "Ihre Frage"
    assert i18n.messages("fr") == i18n.catalogue("en")


@pytest.mark.parametrize("address, expected", [
    ("sie", {"quota": "Sie haben das heutige Limit an Fragen in diesem Kurs erreicht (höchstens 20 am Tag). Sie "
                      "können ab 8:00 wieder fragen.",
             "not_covered": "Bitte fragen Sie Ihre Lehrperson", "withheld": "Bitte stellen Sie Ihre Frage anders.",
             "page": "Ihre Frage"}),
    ("du", {"quota": "Du hast das heutige Limit an Fragen in diesem Kurs erreicht (höchstens 20 am Tag). Du kannst "
                     "ab 8:00 wieder fragen.",
            "not_covered": "Bitte frag deine Lehrperson", "withheld": "Bitte stelle deine Frage anders.",
            "page": "Deine Frage"}),
])
def test_service_messages_come_from_the_configured_catalogue(
        make_app: Callable[..., Flask], address: str, expected: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(german_address=address)
    session = cast(SessionToken, SimpleNamespace(locale="de-DE", preview=False))
    with app.app_context():
        # The quota refusal's words (course_bots/quotas fills in the limit and the time it resets).
        assert i18n.text("quota_questions_exceeded", "de", limit=20, time="8:00") == expected["quota"]
        assert expected["not_covered"] in prompting.not_covered_message("de")
        assert chat.withheld_message(session, "en").endswith(expected["withheld"])
        assert app.jinja_env.globals["catalogue"]("de")["question_label"] == expected["page"]  # type: ignore
        assert i18n.text("quota_questions_exceeded", "en", limit=20, time="8:00").startswith("You have reached")


def test_citations_name_the_page_in_the_ui_language() -> None:
    def chunk(**fields: Any) -> Chunk:
        return Chunk(chunk_id="c", document_id="d", document_title="Folien.pdf", text="x", **fields)

    assert prompting.citation_label(chunk(position=4, locator=Locator.PAGE), "de") == "Folien.pdf, Seite 4"
    assert prompting.citation_label(chunk(position=2, position_end=3, locator=Locator.SLIDE),
                                    "de") == "Folien.pdf, Folien 2–3"
    page = chunk(position=4, locator=Locator.PAGE)
    assert prompting.citation_label(page, "en") == page.citation_label == "Folien.pdf, page 4"
    section = chunk(heading_path=("Methoden",))
    assert prompting.citation_label(section, "de") == section.citation_label


def test_loader_errors_are_told_by_code(make_app: Callable[..., Flask]) -> None:
    with make_app().app_context():
        german = error_text("corrupt", "This file is damaged and cannot be read.", "de")
        assert german.startswith("Diese Datei ist beschädigt") and "Öffnen Sie" in german
        assert "password" in error_text("encrypted", "ignored", "en")
        assert error_text("too_large", "This file is 1.5 MB; the limit is 1 MB.", "en").startswith("This file is 1.5")
        assert error_text("too_large", "ignored", "en", size=1_500_000).startswith("This file is 1.5 MB")
        assert error_text("something_new", "As it came.", "de") == "As it came."


# docs/GLOSSARY.md: the German words the pages use, and the ones they avoid.
AVOIDED = {
    r"Gespräch": "Unterhaltung",
    r"\w+(:|\*|_)innen|\w+Innen\b": "a neutral form (Studierende, Lehrende) or both forms",
    r"\bReiter\b": "Tab",
    r"\bDokument": "Datei or Material",
    r"\bStudenten\b|\bDozent|\bLehrer": "Studierende, Lehrende",
    r"\"": "„…“ (German quotation marks)",
    r"Kreativität|\(Temperatur": "words a teacher understands, the technical value in the hint",
}


@pytest.mark.parametrize("address", ["sie", "du"])
def test_german_follows_the_glossary(address: str) -> None:
    for key, message in i18n.catalogue("de", address).items():
        for pattern, instead in AVOIDED.items():
            assert not re.search(pattern, message), f"{key}: {message!r} — use {instead}"


def test_settings_say_in_words_what_the_technical_values_do() -> None:
    for lang in ("de", "en"):
        messages = i18n.catalogue(lang)
        assert not re.search(r"\d", messages["temperature"] + messages["max_answer_tokens"])  # no ranges in labels
        assert "1,5" in messages["temperature_hint"] if lang == "de" else "1.5" in messages["temperature_hint"]
        assert "4096" in messages["max_answer_tokens_hint"]


@pytest.mark.parametrize("kind, words", [
    ("local", {"de": "das Ihre Hochschule selbst betreibt", "en": "your institution runs itself"}),
    ("external", {"de": "ein externes Sprachmodell (Gateway)", "en": "an external language model (Gateway)"}),
    ("extractive", {"de": "kein Sprachmodell", "en": "No language model"}),
])
def test_the_consent_notice_says_who_answers(make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch,
                                             kind: str, words: dict[str, str]) -> None:
    app = make_app()
    monkeypatch.setitem(app.extensions, "coursebots.model_kind_resolver", lambda bot_id: kind)
    monkeypatch.setitem(app.extensions, "coursebots.external_model_resolver",
                        lambda bot_id: "Gateway" if kind == "external" else None)
    monkeypatch.setattr(consent, "effective_retention", lambda bot_id: SimpleNamespace(anonymize_days=90,
                                                                                       delete_days=365))
    with app.app_context():
        for lang in ("de", "en"):
            notice = consent.Notice(None, "", lang, 0, i18n.text("consent_notice", lang))
            text = consent.render_notice(notice, 1)
            assert words[lang] in text, text
            assert "{" not in text
            others = {"local", "external", "extractive"} - {kind}
            for other in others:
                assert i18n.text(f"consent_model_sentence_{other}", lang, name="Gateway") not in text


def test_service_refusals_answer_in_the_pages_language(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    refusal = ServiceError("invalid_faq", "An FAQ entry needs both a question and an answer.")
    with app.test_request_context(headers={"Accept-Language": "de-DE,de;q=0.9"}):
        assert error_response(refusal).get_json()["error"] == {
            "code": "invalid_faq", "message": i18n.text("error_invalid_faq", "de")}
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert error_response(refusal).get_json()["error"]["message"].startswith("An FAQ entry needs a question")
        unknown = ServiceError("something_new", "As it came.")
        assert error_response(unknown).get_json()["error"]["message"] == "As it came."
