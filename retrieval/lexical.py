"""BM25 over one course's chunks (bm25s sparse scoring), analysed per chunk and per query language.

German compounds are split into parts the course itself uses (``analysis.Decompounder``, both at index and at
query time, the whole token kept); an unknown query word one typo away from a known word also matches that word.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

from retrieval.analysis import DEFAULT_LANGUAGE, Decompounder, analyse, analyzer_language, near_known_word, tokenize
from retrieval.language import detect_language

log = logging.getLogger(__name__)

__all__ = ["BM25Index", "QueryTerm", "query_terms", "query_tokens", "tokenize"]


@dataclass(frozen=True)
class QueryTerm:
    """One query token and the index tokens that stand in for it (compound parts, or the word a typo meant)."""

    token: str
    parts: tuple[str, ...] = ()  # compound parts, all present = the term is present
    corrected: str | None = None  # the known token one typo away, for an unknown token

    def tokens(self) -> list[str]:
        """Every token this term looks up in the index."""
        return [self.token, *self.parts, *([self.corrected] if self.corrected else [])]


def query_terms(text: str, language: str, split: Callable[[str], tuple[str, ...]] | None = None,
                correct: Callable[[str, str], str | None] | None = None) -> list[QueryTerm]:
    """The query's terms as one analyzer sees them; ``split`` gives a German token's compound parts, ``correct``
    the known token an unknown word (as written) was a typo of."""
    split = split if language == "de" else None
    terms = []
    for word, token in analyse(text, language):
        parts = split(token) if split is not None else ()
        corrected = correct(word, language) if correct is not None and not parts else None
        if corrected is not None and split is not None:
            parts = split(corrected)  # a typo inside a compound ("Klasurtermin")
        terms.append(QueryTerm(token, parts, corrected))
    return terms


def query_languages(text: str, course_languages: Sequence[str]) -> list[str]:
    """Analyse the query in its own language; when that is unclear, in every language of the course."""
    language = detect_language(text)
    if language is not None:
        return [analyzer_language(language)]
    return sorted({analyzer_language(lang) for lang in course_languages} or {DEFAULT_LANGUAGE})


def query_tokens(text: str, course_languages: Sequence[str]) -> list[str]:
    """Stem the query in its own language; when that is unclear, in every language of the course."""
    tokens: list[str] = []
    for lang in query_languages(text, course_languages):
        tokens.extend(t for t in tokenize(text, lang) if t not in tokens)
    return tokens


class BM25Index:
    """BM25 scores for every chunk at once (a sparse matrix product inside bm25s, no Python loop per chunk)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, decompound: bool = True, typos: bool = True,
                 unknown_weight: float = 1.0) -> None:
        """Set the BM25 parameters; the index is built on the first search after a change.

        ``decompound`` splits German compounds by the course's vocabulary; ``typos`` lets an unknown query word
        match the known word one edit away; ``unknown_weight`` scales the IDF that ``coverage`` gives a query
        word the course never uses (1: as much as the rarest word of the course).
        """
        self.k1 = k1
        self.b = b
        self.decompound = decompound
        self.typos = typos
        self.unknown_weight = unknown_weight
        self._tokens: list[list[str]] = []
        self._expanded: list[list[str]] = []
        self._languages: list[str] = []
        self._model: Any = None
        self._idf: dict[str, float] = {}
        self._df: dict[str, int] = {}
        self._decompounder: Decompounder | None = None
        self._corrections: dict[tuple[str, str], str | None] = {}
        self._course_languages: list[str] = []

    def __len__(self) -> int:
        """Number of indexed texts."""
        return len(self._tokens)

    def set_texts(self, texts: Sequence[str], languages: Sequence[str | None]) -> None:
        """Replace the indexed texts (tokenised now, indexed lazily)."""
        self._tokens = [tokenize(t, lang) for t, lang in zip(texts, languages)]
        self._languages = [lang or DEFAULT_LANGUAGE for lang in languages]
        self._model = None

    def extend(self, texts: Sequence[str], languages: Sequence[str | None]) -> None:
        """Append texts; bm25s has no incremental update, so the next search rebuilds the matrix."""
        self._tokens.extend(tokenize(t, lang) for t, lang in zip(texts, languages))
        self._languages.extend(lang or DEFAULT_LANGUAGE for lang in languages)
        self._model = None

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        """Keep only the texts where ``mask`` is true (document removal)."""
        self._tokens = [t for t, m in zip(self._tokens, mask) if m]
        self._languages = [lang for lang, m in zip(self._languages, mask) if m]
        self._model = None

    def _expand(self) -> list[list[str]]:
        """Each text's tokens plus the parts of its German compounds (the vocabulary is the whole course's)."""
        df: Counter[str] = Counter()
        for tokens in self._tokens:
            df.update(set(tokens))
        self._df = dict(df)
        self._corrections = {}
        self._decompounder = Decompounder(self._df) if self.decompound else None
        if self._decompounder is None:
            return self._tokens
        split = self._decompounder.split
        return [tokens + [p for t in tokens for p in split(t)] if analyzer_language(lang) == "de" else tokens
                for tokens, lang in zip(self._tokens, self._languages)]

    def _build(self) -> Any:
        """Build the bm25s matrix from the stored token lists (German compounds expanded)."""
        import bm25s

        # bm25s sets its own logger to DEBUG on import, which floods any application log.
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self._expanded = self._expand()
        model = bm25s.BM25(k1=self.k1, b=self.b)
        # An empty text still needs a token so bm25s keeps its row aligned with ours.
        model.index([t or [""] for t in self._expanded], show_progress=False)
        # Document frequencies straight from the matrix: each token's column holds one entry per text with it.
        n = len(self._tokens)
        df = np.diff(model.scores["indptr"]).astype(np.float64)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        self._idf = {t: float(idf[i]) for t, i in model.vocab_dict.items() if t and df[i] > 0}
        self._course_languages = sorted(set(self._languages))
        self._model = model
        return model

    def _terms(self, query: str, language: str) -> list[QueryTerm]:
        """The query's terms in one analyzer, with this course's compound parts and typo corrections."""
        split = self._decompounder.split if self._decompounder is not None else None
        return query_terms(query, language, split, self._correct if self.typos else None)

    def _correct(self, word: str, language: str) -> str | None:
        """The known stem one edit away from an unknown word (remembered: a search asks twice)."""
        key = (word, language)
        if key not in self._corrections:
            if len(self._corrections) > 10000:
                self._corrections.clear()
            self._corrections[key] = near_known_word(word, language, self._df)
        return self._corrections[key]

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every indexed text for the query (zeros when no query word occurs)."""
        n = len(self._tokens)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        model = self._model or self._build()
        tokens: list[str] = []
        languages = query_languages(query, self._course_languages)
        for lang in languages:
            terms = [t for term in self._terms(query, lang) for t in term.tokens()]
            # Several analyzers (language unclear): a token both produce counts once.
            tokens.extend(t for t in terms if len(languages) == 1 or t not in tokens)
        ids = [model.vocab_dict[t] for t in tokens if t in model.vocab_dict]
        if not ids:
            return np.zeros(n, dtype=np.float32)
        if model.nonoccurrence_array is not None:  # BM25L/BM25+ variants: let bm25s add their terms
            return np.asarray(model.get_scores_from_ids(ids), dtype=np.float32)
        # Sum each query token's precomputed column with one bincount: bm25s loops np.add.at per token,
        # which is several times slower on large courses.
        matrix = model.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        rows = np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in ids])
        weights = np.concatenate([data[indptr[i]:indptr[i + 1]] for i in ids])
        return np.bincount(rows, weights=weights, minlength=n).astype(np.float32)

    def coverage(self, query: str, rows: Sequence[int]) -> list[float]:
        """Share of the query's IDF mass present in each given text: an absolute, [0, 1] lexical match.

        A compound counts by the share of its parts present; a typo'd word counts as the word it meant.
        """
        if self._model is None and self._tokens:
            self._build()
        max_idf = max(self._idf.values(), default=1.0)
        by_language: dict[str, list[tuple[float, QueryTerm]]] = {}
        result = []
        for r in rows:
            # The query is analysed like the chunk, so "trees" matches an English "tree" chunk.
            language = analyzer_language(self._languages[r])
            if language not in by_language:
                unique = {term.token: term for term in self._terms(query, language)}.values()
                by_language[language] = [(self._weight(term, max_idf), term) for term in unique]
            weighted = by_language[language]
            total = sum(w for w, _ in weighted)
            present = set(self._expanded[r])
            found = sum(w * _presence(term, present) for w, term in weighted)
            result.append(found / total if total else 0.0)
        return result

    def _weight(self, term: QueryTerm, max_idf: float) -> float:
        """A term's IDF in this course; for a word the course never uses, the rarest word's IDF scaled."""
        if term.token in self._idf:
            return self._idf[term.token]
        known = [self._idf[t] for t in (*term.parts, term.corrected) if t in self._idf]
        return max(known) if known else max_idf * self.unknown_weight


def _presence(term: QueryTerm, present: set[str]) -> float:
    """1 when the term (or the word its typo meant) is in the text, else the share of its compound parts there."""
    if term.token in present or term.corrected in present:
        return 1.0
    if term.parts:
        return sum(1 for p in term.parts if p in present) / len(term.parts)
    return 0.0
