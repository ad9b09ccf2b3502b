"""Cheap language detection: the script first (non-Latin scripts get their own code), then German/English by stopwords.

The result decides the analyzer per chunk and per query: Snowball stemming for ``de``/``en``, an unstemmed one
for everything else (see ``retrieval.analysis``).
"""
from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

GERMAN_STOPWORDS = frozenset(
    "aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf "
    "aus bei bin bis bist da damit dann das dass dein dem den denn der des dessen dich die dies diese diesem "
    "diesen dieser dieses dir doch dort du durch ein eine einem einen einer eines einige er es etwas euch "
    "für gegen gewesen hab habe haben hat hatte hier hin hinter ich ihm ihn ihnen ihr ihre im in indem ins "
    "ist jede jedem jeden jeder jedes jetzt kann kein keine können könnte man manche mein mich mir mit muss "
    "nach nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so solche soll sondern sonst "
    "über um und uns unter viel vom von vor war waren was weil welche wenn werden wie wieder will wir wird "
    "wo wollen würde zu zum zur zwar zwischen wird werden wurde wurden sowie bzw "
    # question words: they carry no topic, and a course's text rarely uses them
    "wann warum wieso weshalb woher wohin womit wofür worauf wozu welchen welchem welches".split()
)
ENGLISH_STOPWORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being below "
    "between both but by can could did do does doing down during each few for from further had has have "
    "having he her here hers him his how i if in into is it its itself just me more most my no nor not of "
    "off on once only or other our out over own same she should so some such than that the their them then "
    "there these they this those through to too under until up very was we were what when where which while "
    "who whom why will with would you your".split()
)
# Words both languages share ("in", "so", "will", ...) say nothing about the language.
_SHARED = GERMAN_STOPWORDS & ENGLISH_STOPWORDS
_DE_ONLY = GERMAN_STOPWORDS - _SHARED
_EN_ONLY = ENGLISH_STOPWORDS - _SHARED
_UMLAUT = re.compile(r"[äöüßÄÖÜ]")


# Letters of scripts other than Latin, by the code their text gets. Persian and Ukrainian are told apart from
# Arabic and Russian by letters only they use; Japanese from Chinese by kana.
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("zh", re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
)
_PERSIAN_ONLY = re.compile(r"[\u067e\u0686\u0698\u06af]")  # پ چ ژ گ
_UKRAINIAN_ONLY = re.compile(r"[\u0456\u0457\u0454\u0491]")  # і ї є ґ
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
STEMMED_LANGUAGES = ("de", "en")


def detect_script(text: str) -> str | None:
    """The code of the non-Latin script most letters are written in (``zh``, ``ar``, ``fa``, ``ru``, …), else None.

    Text where most letters are Latin (or that has no letters) gives None: it is German or English to the
    stopword test. Han characters with any kana count as Japanese.
    """
    sample = text[:20000]
    letters = len(_LETTER.findall(sample))
    if not letters:
        return None
    counts = {code: len(pattern.findall(sample)) for code, pattern in _SCRIPTS}
    if counts["ja"]:
        counts["ja"] += counts.pop("zh")
    code, count = max(counts.items(), key=lambda item: item[1])
    # A CJK character is a word or syllable, not a letter: it weighs as much as three Latin letters.
    weight = 3 if code in ("zh", "ja", "ko") else 1
    if count * weight < letters - count:
        return None
    if code == "ar" and _PERSIAN_ONLY.search(sample):
        return "fa"
    if code == "ru" and _UKRAINIAN_ONLY.search(sample):
        return "uk"
    return code


def detect_language(text: str, default: str | None = None) -> str | None:
    """Return the script's code for non-Latin text, ``"de"`` or ``"en"``, or ``default`` when the evidence is thin."""
    script = detect_script(text)
    if script is not None:
        return script
    words = [w.lower() for w in _WORD.findall(text[:20000])]
    if not words:
        return default
    de = float(sum(1 for w in words if w in _DE_ONLY))
    en = sum(1 for w in words if w in _EN_ONLY)
    # Umlauts are a strong German signal in short texts such as queries.
    de += len(_UMLAUT.findall(text[:20000])) * 0.5
    if de == en:
        return default
    return "de" if de > en else "en"
