"""BM25 over one course's chunks (bm25s sparse scoring), stemmed per chunk and per query language."""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from retrieval.language import ENGLISH_STOPWORDS, GERMAN_STOPWORDS, detect_language

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMERS = {"de": "german", "en": "english"}
_STOPWORDS = {"de": GERMAN_STOPWORDS, "en": ENGLISH_STOPWORDS}
DEFAULT_LANGUAGE = "en"


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Any:
    """A PyStemmer Snowball stemmer (C implementation) for the language."""
    import Stemmer

    return Stemmer.Stemmer(_STEMMERS.get(language, "english"))


def tokenize(text: str, language: str | None) -> list[str]:
    """Lower-case words without stopwords, stemmed with the language's Snowball stemmer."""
    lang = language if language in _STEMMERS else DEFAULT_LANGUAGE
    stop = _STOPWORDS[lang]
    words = [w for w in _TOKEN.findall(text.lower()) if w not in stop]
    return list(_stemmer(lang).stemWords(words))


def query_tokens(text: str, course_languages: Sequence[str]) -> list[str]:
    """Stem the query in its own language; when that is unclear, in every language of the course."""
    language = detect_language(text)
    if language is not None:
        return tokenize(text, language)
    tokens: list[str] = []
    for lang in sorted(set(course_languages) or {DEFAULT_LANGUAGE}):
        tokens.extend(t for t in tokenize(text, lang) if t not in tokens)
    return tokens


class BM25Index:
    """BM25 scores for every chunk at once (a sparse matrix product inside bm25s, no Python loop per chunk)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        """Set the BM25 parameters; the index is built on the first search after a change."""
        self.k1 = k1
        self.b = b
        self._tokens: list[list[str]] = []
        self._languages: list[str] = []
        self._model: Any = None
        self._idf: dict[str, float] = {}
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

    def _build(self) -> Any:
        """Build the bm25s matrix from the stored token lists."""
        import bm25s

        # bm25s sets its own logger to DEBUG on import, which floods any application log.
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        model = bm25s.BM25(k1=self.k1, b=self.b)
        # An empty text still needs a token so bm25s keeps its row aligned with ours.
        model.index([t or [""] for t in self._tokens], show_progress=False)
        # Document frequencies straight from the matrix: each token's column holds one entry per text with it.
        n = len(self._tokens)
        df = np.diff(model.scores["indptr"]).astype(np.float64)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        self._idf = {t: float(idf[i]) for t, i in model.vocab_dict.items() if t and df[i] > 0}
        self._course_languages = sorted(set(self._languages))
        self._model = model
        return model

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every indexed text for the query (zeros when no query word occurs)."""
        n = len(self._tokens)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        model = self._model or self._build()
        ids = [model.vocab_dict[t] for t in query_tokens(query, self._course_languages) if t in model.vocab_dict]
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
        """Share of the query's IDF mass present in each given text: an absolute, [0, 1] lexical match."""
        if self._model is None and self._tokens:
            self._build()
        max_idf = max(self._idf.values(), default=1.0)
        result = []
        for r in rows:
            # The query is stemmed like the chunk, so "trees" matches an English "tree" chunk.
            tokens = set(tokenize(query, self._languages[r]))
            weights = {t: self._idf.get(t, max_idf) for t in tokens}
            total = sum(weights.values())
            present = set(self._tokens[r])
            result.append(sum(w for t, w in weights.items() if t in present) / total if total else 0.0)
        return result
