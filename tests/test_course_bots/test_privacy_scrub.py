"""PII scrubbing: what a stored log may not contain, and what ordinary course questions must keep."""
from __future__ import annotations

import pytest

from course_bots.privacy_rules import label, logs_open
from course_bots.privacy_rules import Scrubber, fold, name_variants, scrub

NAMES = ("Anna-Lena Müller", "Anna-Lena", "Müller")


@pytest.mark.parametrize("text, forbidden, placeholder", [
    ("Schreib an anna-lena.mueller@uni-beispiel.de bitte", "mueller@", "[email]"),
    ("MAIL: A.Mueller+kurs@Student.Uni-Example.ORG", "uni-example", "[email]"),
    ("anna (at) uni-beispiel (dot) de", "uni-beispiel", "[email]"),
    ("anna[at]uni-beispiel.de", "uni-beispiel", "[email]"),
    ("Ruf an: 0151 23456789", "23456789", "[phone]"),
    ("Tel. +49 (0)30 1234567 oder 030/1234567", "1234567", "[phone]"),
    ("call +1 415-555-0134 now", "555-0134", "[phone]"),
    ("call (415) 555-0134 now", "555-0134", "[phone]"),
    ("Festnetz 0049 30 12345678", "12345678", "[phone]"),
    ("IBAN DE89 3704 0044 0532 0130 00 bitte", "0532", "[iban]"),
    ("IBAN: DE89370400440532013000.", "370400", "[iban]"),
    ("GB82WEST12345698765432 is mine", "WEST1234", "[iban]"),
    ("Meine Matrikelnummer ist 1234567", "1234567", "[id]"),
    ("Matr.-Nr.: 7654321, bitte", "7654321", "[id]"),
    ("my student ID: s1234567", "s1234567", "[id]"),
    ("Link https://moodle.example/pluginfile.php/12/x.pdf?token=abc123def&forcedownload=1", "abc123def", "[url]"),
    ("https://lms.example/webservice/rest?wstoken=0a1b2c3d4e5f&wsfunction=x", "0a1b2c3d4e5f", "[url]"),
    ("shared doc https://docs.example/d/1AbC2dEf3GhI4jKl5MnO6pQr7StU/edit", "1AbC2dEf3GhI4", "[url]"),
    ("https://x.example/#access_token=eyJhbGciOi", "eyJhbGciOi", "[url]"),
])
def test_patterns(text: str, forbidden: str, placeholder: str) -> None:
    result = scrub(text)
    assert forbidden.lower() not in result.lower() and placeholder in result, result


@pytest.mark.parametrize("text", [
    "Ich heiße Anna-Lena Müller.",
    "anna-lena müller hier",
    "ANNA-LENA MÜLLER",
    "Anna Lena Mueller",
    "Annalena Muller fragt",
    "Müllers Frage zu Aufgabe 3",
    "Anna-Lenas Lösung",
    "Herrn Müller gefällt das nicht",
    "Frau Müller-Lüdenscheidt",
    "Anna-Lena's answer",
    "Mueller’s question",
    "MÜLLERS Hausaufgabe",
    "Das ist von Lena.",
    "user annamuller on the forum",
])
def test_names_in_all_forms(text: str) -> None:
    result = scrub(text, NAMES)
    folded, _ = fold(result)
    for part in ("anna", "lena", "muller"):
        assert part not in folded.replace("[name]", ""), result
    assert "[name]" in result


@pytest.mark.parametrize("text", [
    "Was ist der Unterschied zwischen TCP und UDP?",
    "Berechne 3 + 4 = 7 und 0.5 * 2 = 1, x = 12.75",
    "Am 2024-01-15 und am 01.02.2024 ist Klausur, Raum 1.234",
    "Siehe https://docs.python.org/3/library/re.html für Details.",
    "ISBN 978-3-16-148410-0",
    "look at chapter. Then answer question 2",
    "Die Mülltrennung in Mannheim",  # neither "Müller" nor "Anna" as a word
    "Kapitel 12, Seite 345, Aufgabe 6b",
])
def test_ordinary_questions_unchanged(text: str) -> None:
    assert scrub(text, NAMES) == text


def test_hyphenated_name_collapses_to_one_placeholder() -> None:
    assert scrub("Hallo Anna-Lena Müller!", NAMES) == "Hallo [name]!"
    assert scrub("Herrn Müllers Idee", NAMES) == "Herrn [name] Idee"


def test_extra_patterns_from_configuration() -> None:
    scrubber = Scrubber(extra_patterns=(r"\b[sS]\d{7}\b", r"\bMAT-\d{4}-\d{5}\b"))
    assert scrubber.scrub("Ich bin s1234567, ID MAT-2024-77881") == "Ich bin [id], ID [id]"
    assert scrub("Ich bin s1234567") == "Ich bin s1234567"  # no institution pattern, no keyword: kept


def test_scrub_json_and_empty() -> None:
    scrubber = Scrubber(NAMES)
    assert scrubber.scrub_json([{"quote": "Frau Müller", "page": 3}]) == [{"quote": "Frau [name]", "page": 3}]
    assert scrubber.scrub("") == "" and scrubber.scrub(None) == ""


def test_name_variants_skip_particles_and_initials() -> None:
    variants = name_variants(("Dr. Jan van der Berg", "J.", ""))
    assert "berg" in variants and "jan" in variants
    assert not {"van", "der", "dr", "j"} & set(variants)


def test_labels_and_threshold() -> None:
    assert label("learner", 17) == "Student 17"
    assert label("teaching_assistant", 2) == "Teaching assistant 2"
    assert label("learner", None) == "Student (anonymized)"
    assert not logs_open(4, 5) and logs_open(5, 5) and logs_open(1, 0)


def test_neighbours_share_boundaries_and_odd_input_is_safe() -> None:
    # Long pasted text and its cost: tests/test_course_bots/test_scrub_cost.py (by input scaling).
    assert scrub("+49 151 2345678 +49 30 1234567") == "[phone] [phone]"
    assert scrub("a" * 70 + "@uni.example") == "[email]"  # longer than an address may be: scrubbed whole
    assert scrub("Ruf 0151 23456789 \ud800") == "Ruf [phone] \ufffd"  # a lone surrogate from JSON
    assert scrub("Müller0151 23456789", NAMES) == "[name]0151 23456789"  # a digit is no boundary for a phone


def test_names_in_scripts_without_spaces_and_other_alphabets() -> None:
    assert scrub("王小明的问题是什么", ("王小明",)) == "[name]的问题是什么"
    assert scrub("Вопрос от Иванова", ("Иванов",)) == "Вопрос от [name]"
    assert scrub("Ιωάννης ρωτά", ("Ιωάννης",)) == "[name] ρωτά"
