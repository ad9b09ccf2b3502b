"""Words as students type them: German umlauts written out, compounds, typos, and scripts other than Latin."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.analysis import Decompounder, near_known_word, tokenize
from retrieval.language import detect_language, detect_script
from retrieval.lexical import BM25Index

GERMAN = [
    "Der Termin der Klausur ist am 12. Februar in Raum H 101.",
    "Die Übung findet dienstags statt, die Lösungen kommen freitags.",
    "Zur Prüfung meldet man sich im Portal an. Die Prüfung dauert 90 Minuten.",
    "Die Straße zur Hochschule ist wegen Bauarbeiten gesperrt.",
    "Der Klausurtermin für die Wiederholer wird noch bekannt gegeben.",
    "Die Anmeldung erfolgt online über das Portal der Hochschule.",
    "Ein Suchbaum speichert Schlüssel geordnet; ein Baum hat Knoten.",
]


def _index(texts: list[str], language: str = "de") -> BM25Index:
    index = BM25Index()
    index.set_texts(texts, [language] * len(texts))
    return index


def _best(index: BM25Index, query: str) -> int:
    scores = index.scores(query)
    assert scores.max() > 0, query
    return int(np.argmax(scores))


@pytest.mark.parametrize("query, row", [("Pruefung", 2), ("Uebung", 1), ("Strasse", 3), ("Loesungen", 1),
                                        ("Prüfung", 2), ("Übung", 1), ("Straße", 3)])
def test_umlauts_written_out_find_the_same_passage(query: str, row: int) -> None:
    assert _best(_index(GERMAN), query) == row


def test_umlauts_fold_alike_in_english_analysed_text() -> None:
    # A German word inside an English course (or a query detected as English) still matches both spellings.
    index = _index(["The Pruefungsordnung regulates exams.", "Lectures start in October."], "en")
    assert _best(index, "Where is the Prüfungsordnung?") == 0
    assert tokenize("Prüfung", "en") == tokenize("Pruefung", "en")
    # English words with "ue" or "oe" are left alone.
    assert tokenize("queue shoes", "en") == ["queue", "shoe"]


def test_compound_and_its_parts_written_apart_find_each_other() -> None:
    index = _index(GERMAN)
    by_compound = index.scores("Klausurtermin")
    assert by_compound[0] > 0 and by_compound[4] > 0  # "Termin der Klausur" and "Klausurtermin"
    by_parts = index.scores("Termin der Klausur")
    assert by_parts[4] > 0  # the compound in the text is split by the course's own vocabulary
    assert index.coverage("Klausurtermin", [0]) == [pytest.approx(1.0)]


def test_decompounder_uses_the_course_vocabulary_and_keeps_frequent_compounds() -> None:
    df = {"klausur": 5, "termin": 4, "prufung": 3, "anmeld": 2, "dat": 3, "bank": 2, "gleichung": 9, "gleich": 2}
    split = Decompounder(df).split
    assert split("klausurtermin") == ("klausur", "termin")
    assert split("prufungsanmeld") == ("prufung", "anmeld")  # linking "s" removed
    assert split("datenbank") == ("dat", "bank")  # the modifier as the stemmer writes it
    assert split("gleichung") == ()  # used often as a whole: not split into "gleich" + ...
    assert split("kurz") == ()
    assert split("zeitplanung") == ()  # parts unknown to the course


def test_one_typo_matches_the_known_word() -> None:
    index = _index(GERMAN)
    assert _best(index, "Wann ist die Pruefnug?") == 2
    assert near_known_word("Klausru".lower(), "de", {"klausur": 2}) == "klausur"
    assert near_known_word("kla", "de", {"klausur": 2}) is None  # short words are not corrected
    index.typos = False
    assert index.scores("Pruefnug").max() == 0


@pytest.mark.parametrize("text, code", [
    ("机器学习是人工智能的一个分支。", "zh"), ("機械学習はAIの一分野です", "ja"), ("머신러닝은 인공지능의 한 분야입니다", "ko"),
    ("التعلم الآلي هو فرع من الذكاء الاصطناعي", "ar"), ("یادگیری ماشین شاخه‌ای از هوش مصنوعی است و پیشرفت کرده", "fa"),
    ("Машинное обучение — раздел искусственного интеллекта", "ru"), ("Python 编程入门课程的考试时间", "zh"),
])
def test_scripts_other_than_latin_get_their_own_language(text: str, code: str) -> None:
    assert detect_script(text) == code
    assert detect_language(text) == code


def test_latin_text_is_still_german_or_english() -> None:
    assert detect_script("Die Klausur findet im Hörsaal statt") is None
    assert detect_language("Die Klausur findet im Hörsaal statt") == "de"
    assert detect_language("The exam takes place in the lecture hall") == "en"


def test_chinese_is_indexed_as_character_bigrams_and_found() -> None:
    assert tokenize("机器学习", "zh") == ["机器", "器学", "学习"]
    assert tokenize("TCP算法", "en") == ["tcp", "算法"]
    index = BM25Index()
    index.set_texts(["机器学习是人工智能的一个分支。", "考试在三号楼举行。"], ["zh", "zh"])
    assert _best(index, "什么是机器学习") == 0
    assert _best(index, "考试在哪里") == 1


def test_arabic_and_persian_are_not_stemmed_as_english_and_variants_unify() -> None:
    # Not stemmed: the English stemmer would leave these alone anyway, but stopwords or "s"-stripping must not apply.
    assert tokenize("الامتحان", "ar") == ["الامتحان"]
    # Hamza forms, diacritics and Arabic/Persian yeh and kaf variants are written interchangeably.
    assert tokenize("أَحْمَد", "ar") == tokenize("احمد", "ar")
    assert tokenize("كتابي", "fa") == tokenize("کتابی", "fa")
    index = BM25Index()
    index.set_texts(["امتحان پایانی در کلاس ۲۰۳ برگزار می‌شود", "تکالیف هفتگی را در سامانه بارگذاری کنید"],
                    ["fa", "fa"])
    assert _best(index, "امتحان پایانی کجاست؟") == 0


def test_cyrillic_words_are_kept_whole_and_case_folded() -> None:
    assert tokenize("Экзамен состоится", "ru") == ["экзамен", "состоится"]
