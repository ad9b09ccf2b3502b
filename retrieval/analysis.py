"""Text analysis for BM25: tokens per language, German compounds from the course's vocabulary, typo matching.

German and English text is stemmed with Snowball (which already folds ``ä``/``ae`` and ``ß``/``ss`` in German);
every other language (detected by script: Chinese, Arabic, Persian, Cyrillic, …) gets an unstemmed analyzer:
case-folded words, Arabic-script letter variants unified, and runs of CJK characters as overlapping bigrams,
which is how CJK text is indexed without a dictionary. CJK runs become bigrams inside any text.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable, Mapping

from retrieval.language import ENGLISH_STOPWORDS, GERMAN_STOPWORDS, STEMMED_LANGUAGES

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_STEMMERS = {"de": "german", "en": "english"}
_STOPWORDS = {"de": GERMAN_STOPWORDS, "en": ENGLISH_STOPWORDS}
# German letters as a student without a German keyboard writes them; used where text is not stemmed as German
# (the German Snowball stemmer folds both spellings itself). Only non-ASCII letters change, so English is safe.
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
# Arabic script: diacritics (harakat), tatweel and letter variants that writers use interchangeably.
_ARABIC_MARKS = re.compile(r"[\u064b-\u065f\u0670\u0640\u200c\u200d]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ی", "ي": "ی", "ك": "ک", "ة": "ه"})
DEFAULT_LANGUAGE = "en"

MIN_COMPOUND = 8  # shortest token tried as a compound
MIN_PART = 4  # shortest part of a compound
_LINKS = ("s", "es", "n", "en", "e")  # German linking elements (Fugenelemente) between compound parts
MIN_TYPO_LENGTH = 5  # shorter unknown words are not matched to a known word one edit away
_VOWELS = "aeiouyäöü"


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Any:
    """A PyStemmer Snowball stemmer (C implementation) for the language."""
    import Stemmer

    return Stemmer.Stemmer(_STEMMERS[language])


def analyzer_language(language: str | None) -> str:
    """The analyzer a language gets: ``de``/``en`` (stemmed), ``none`` (unstemmed) for every other language."""
    if language is None:
        return DEFAULT_LANGUAGE
    return language if language in STEMMED_LANGUAGES else "none"


def _words(text: str) -> Iterable[str]:
    """Case-folded words; CJK runs split into overlapping character bigrams (a lone character stays)."""
    for word in _TOKEN.findall(unicodedata.normalize("NFKC", text).lower()):
        if not _CJK_RUN.search(word):
            yield word
            continue
        position = 0
        for run in _CJK_RUN.finditer(word):
            if run.start() > position:
                yield word[position:run.start()]
            chars = run.group()
            yield from ([chars] if len(chars) == 1 else (chars[i:i + 2] for i in range(len(chars) - 1)))
            position = run.end()
        if position < len(word):
            yield word[position:]


def analyse(text: str, language: str | None) -> list[tuple[str, str]]:
    """(word as written, token) pairs without stopwords: Snowball stems for German and English, unstemmed words
    for other languages."""
    lang = analyzer_language(language)
    if lang == "none":
        words = [w.translate(_UMLAUTS) for w in _words(_ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS))]
        return list(zip(words, words))
    stop = _STOPWORDS[lang]
    words = [w for w in _words(text) if w not in stop]
    folded = words if lang == "de" else [w.translate(_UMLAUTS) for w in words]
    return list(zip(words, _stemmer(lang).stemWords(folded)))


def tokenize(text: str, language: str | None) -> list[str]:
    """Lower-case tokens without stopwords: Snowball stems for German and English, unstemmed for other languages."""
    return [token for _, token in analyse(text, language)]


class Decompounder:
    """Splits German compound tokens into parts that the course's own index contains ("klausurtermin" →
    "klausur", "termin"), so a compound and its parts written apart find the same passages.

    A split is kept when the geometric mean of its parts' document frequencies exceeds the whole token's
    (Koehn & Knight 2003): a compound the course uses often ("Gleichung") stays whole. Tokens are stems, so
    the head is compared as a stem and a modifier as written or stemmed ("daten" → "dat").
    """

    def __init__(self, document_frequency: Mapping[str, int]) -> None:
        """Use these stems and their document frequencies as the vocabulary."""
        self._df = document_frequency
        self._cache: dict[str, tuple[str, ...]] = {}

    def split(self, token: str) -> tuple[str, ...]:
        """The parts of a compound token (without the token itself), or () when it is not one."""
        if len(token) < MIN_COMPOUND or not token.isalpha():
            return ()
        if token not in self._cache:
            self._cache[token] = self._best_split(token, depth=2)[1]
        return self._cache[token]

    def _modifier(self, text: str) -> str | None:
        """The vocabulary stem a compound's first part stands for (linking element removed), if any."""
        for candidate in [text] + [text[:-len(link)] for link in _LINKS if text.endswith(link)]:
            if len(candidate) < MIN_PART:
                continue
            if self._df.get(candidate, 0) > 0:
                return candidate
            stem = str(_stemmer("de").stemWord(candidate))
            if self._df.get(stem, 0) > 0:
                return stem
        return None

    def _best_split(self, token: str, depth: int) -> tuple[float, tuple[str, ...]]:
        """(geometric mean of part frequencies, parts) of the best split; (0, ()) when none beats the whole."""
        best: tuple[float, tuple[str, ...]] = (float(self._df.get(token, 0)), ())
        for i in range(MIN_PART, len(token) - MIN_PART + 1):
            modifier = self._modifier(token[:i])
            if modifier is None:
                continue
            head = token[i:]
            heads: list[tuple[float, tuple[str, ...]]] = []
            if self._df.get(head, 0) > 0:
                heads.append((float(self._df[head]), (head,)))
            if depth > 1 and len(head) >= MIN_COMPOUND:
                inner = self._best_split(head, depth - 1)
                if inner[1]:
                    heads.append(inner)
            for head_score, head_parts in heads:
                n = 1 + len(head_parts)
                score = (self._df[modifier] * head_score ** len(head_parts)) ** (1.0 / n)
                if score >= best[0]:
                    best = (score, (modifier, *head_parts))
        return best if best[1] else (0.0, ())


def near_known_word(word: str, language: str, document_frequency: Mapping[str, int]) -> str | None:
    """The most frequent known stem one edit away from an unknown word (deletion, insertion, substitution, swap).

    A typo changes how a word stems, so the edits are made to the word as written and each is stemmed. Letters
    inserted or substituted are the word's own and the vowels (doubled and missing letters, wrong vowels: most
    typos), which keeps the candidates few. Only words of at least ``MIN_TYPO_LENGTH`` letters in a stemmed
    language; None when the word is known or no known stem is that close.
    """
    if len(word) < MIN_TYPO_LENGTH or not word.isalpha() or language not in STEMMED_LANGUAGES:
        return None
    stemmer = _stemmer(language)
    if language != "de":
        word = word.translate(_UMLAUTS)
    if stemmer.stemWord(word) in document_frequency:
        return None
    letters = set(word) | set(_VOWELS if language == "de" else _VOWELS[:5])
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    candidates = {a + b[1:] for a, b in splits if b}
    candidates |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    candidates |= {a + c + b[1:] for a, b in splits if b for c in letters}
    candidates |= {a + c + b for a, b in splits for c in letters}
    words = [c for c in candidates if len(c) >= MIN_TYPO_LENGTH and c != word]
    known = [(document_frequency[s], s) for s in stemmer.stemWords(words) if s in document_frequency]
    return max(known)[1] if known else None
