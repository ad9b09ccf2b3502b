"""Restore words that PDF text layers break: unmapped ligatures, soft hyphens and hyphens at line ends.

pdfium reports a glyph without a Unicode mapping (often the "fi", "fl", "ff" ligatures) and a soft hyphen as
U+FFFE, pypdf as U+0000; pdfium marks a hyphen it removed at a line end as U+0002. Which letters stood there is
decided by the words the candidates make: the document's own vocabulary first, then a word-frequency lexicon
(``wordfreq``, whose data ships in its wheel, so no download) for the document's language and English.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Iterable, Mapping

GLYPH = "\ufffe"  # an unmapped glyph or a soft hyphen: letters, a hyphen or nothing stood there
HYPHEN = "\x02"  # a hyphen at a line end: a hyphenated word or a compound with a hyphen
_NULL = "\x00"  # pypdf's unmapped glyph
GLYPH_CHOICES = ("", "-", "fi", "fl", "ff", "ffi", "ffl")
HYPHEN_CHOICES = ("", "-")
# Suspended hyphens ("Hardware- und Software", "pre- and post-processing") keep hyphen and space.
_CONJUNCTIONS = frozenset("und oder bzw sowie bis als noch statt wie and or nor to as".split())
_PRESENTATION_FORMS = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                       "\ufb05": "st", "\ufb06": "st"}
_MARK = re.compile(r"(\w*)([\ufffe\x02\x00]|-\n)(\w*)")
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_MIN_FREQUENCY = 1e-8  # below this a lexicon entry is noise (typos, names of one web page)
_SPAN_MIN_CHARS = 5  # a known word inside a compound counts from this length on
_SPAN_REACH = 14  # how far into a compound on each side of the mark a known word is looked for


@lru_cache(maxsize=4)
def _frequencies(language: str) -> Mapping[str, float]:
    """wordfreq's list for a language (``{}`` for a language it lacks); about a second to load, once a process."""
    import wordfreq

    if language not in wordfreq.available_languages(wordlist="best"):
        return {}
    return wordfreq.get_frequency_dict(language, wordlist="best")


class Lexicon:
    """Knows how common a word is: in this document (any count) and in the language (wordfreq)."""

    def __init__(self, language: str | None = None, vocabulary: Iterable[str] = ()) -> None:
        """``vocabulary``: words of the document itself; the lexicon for ``language`` (and English) loads lazily."""
        self.languages = tuple(dict.fromkeys(lang for lang in (language, "en") if lang))
        self.vocabulary: Counter[str] = Counter(w.lower() for w in vocabulary)

    @classmethod
    def from_texts(cls, texts: Iterable[str], language: str | None = None) -> "Lexicon":
        """A lexicon whose vocabulary is every clean word of ``texts`` (words touching a mark are left out)."""
        vocabulary: list[str] = []
        for text in texts:
            for token in text.split():
                if GLYPH in token or HYPHEN in token or _NULL in token:
                    continue
                vocabulary.extend(_TOKEN.findall(token))
        return cls(language, vocabulary)

    def frequency(self, word: str) -> float:
        """The word's frequency in the language lexicons (0.0 when unknown)."""
        word = word.lower()
        return max((_frequencies(lang).get(word, 0.0) for lang in self.languages), default=0.0)

    def known(self, word: str) -> bool:
        """Whether the document uses the word or the lexicon knows it well enough."""
        return bool(word) and (word.lower() in self.vocabulary or self.frequency(word) >= _MIN_FREQUENCY)

    def score(self, word: str) -> tuple[int, float]:
        """(2, n) for a word of the document, (1, frequency) for a word of the language, (0, 0) otherwise."""
        lower = word.lower()
        if self.vocabulary.get(lower):
            return 2, float(self.vocabulary[lower])
        frequency = self.frequency(lower)
        return (1, frequency) if frequency >= _MIN_FREQUENCY else (0, 0.0)

    def longest_span(self, word: str, start: int, end: int) -> int:
        """Length of the longest known word inside ``word`` that covers ``word[start:end]`` (compounds)."""
        best = 0
        lower = word.lower()
        for i in range(max(0, start - _SPAN_REACH), min(start, len(word)) + 1):
            for j in range(len(word), max(end, i + _SPAN_MIN_CHARS) - 1, -1):
                if j - i <= best or j - end > _SPAN_REACH:
                    continue
                if i == start and j == end:
                    continue
                if (start == end and not i < start < j) or j - i < _SPAN_MIN_CHARS:
                    continue
                if self.frequency(lower[i:j]) >= _MIN_FREQUENCY * 10:
                    best = j - i
        return best


def _choose(left: str, right: str, choices: tuple[str, ...], lexicon: Lexicon) -> str:
    """The replacement among ``choices`` that makes ``left + choice + right`` the most plausible text."""
    if "-" in choices and left and right and left[-1].islower() and right[0].isupper():
        return "-"  # "Bayes-Inferenz", "Map-Interface": letters never sit between lower and upper case
    if not (left and right):  # a mark at a word's edge: a ligature ("\ufffendet") or nothing
        choices = tuple(c for c in choices if c not in ("", "-"))
    joined = [c for c in choices if c != "-"]
    if not joined:
        return ""
    scores = {c: lexicon.score(left + c + right) for c in joined}
    best = max(joined, key=lambda c: scores[c])
    if "-" in choices:
        if lexicon.score(f"{left}-{right}")[0] == 2 and scores[best][0] < 2:
            return "-"  # the document writes the compound with its hyphen elsewhere
        if len(left) > 1 and lexicon.known(left) and lexicon.known(right):
            parts = min(lexicon.frequency(left), lexicon.frequency(right))
            # Two words side by side ("self-publishing", "Hardware- und") unless the joined word is common.
            if scores[best][0] == 0 or (scores[best][0] == 1 and scores[best][1] < parts / 30):
                return "-"
    if scores[best][0] > 0:
        return best
    spans = {c: lexicon.longest_span(left + c + right, len(left), len(left) + len(c)) for c in joined}
    best = max(joined, key=lambda c: spans[c])
    return best if spans[best] > 0 else ""


def restore_words(text: str, lexicon: Lexicon | None = None) -> str:
    """Replace every mark (U+FFFE, U+0002, U+0000, a hyphen before a line break) by what most likely stood there."""
    for form, letters in _PRESENTATION_FORMS.items():
        if form in text:
            text = text.replace(form, letters)
    if not any(mark in text for mark in (GLYPH, HYPHEN, _NULL, "-\n")):
        return text
    if lexicon is None:
        from retrieval.language import detect_language

        lexicon = Lexicon(detect_language(text))

    def replace(match: re.Match[str]) -> str:
        left, mark, right = match.group(1), match.group(2), match.group(3)
        if mark == "-\n":
            if not (left and right):
                return match.group(0)
            choice = _choose(left, right, HYPHEN_CHOICES, lexicon)
        else:
            choice = _choose(left, right, HYPHEN_CHOICES if mark == HYPHEN else GLYPH_CHOICES, lexicon)
        if choice == "-" and right.lower() in _CONJUNCTIONS:
            return f"{left}- {right}"
        return left + choice + right

    # Marks can follow each other ("e\ufffeek\ufffeive"): repeat until none is left (each pass removes one per word).
    for _ in range(4):
        restored = _MARK.sub(replace, text)
        if restored == text:
            break
        text = restored
    return text.replace(GLYPH, "").replace(HYPHEN, "").replace(_NULL, "")
