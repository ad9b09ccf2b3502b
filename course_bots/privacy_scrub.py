"""PII scrubbing: what is stored has placeholders (``[email]``, ``[name]``...) instead of personal data.

The model may see the original question; only the stored copy is scrubbed. Patterns err on the side of privacy:
a false ``[phone]`` in a stored log costs little, a leaked phone number costs a lot.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

EMAIL = "[email]"
PHONE = "[phone]"
IBAN = "[iban]"
URL = "[url]"
ID = "[id]"
NAME = "[name]"

# The lookbehind starts a match only at the beginning of a run of address characters: without it a long
# pasted token (base64, a hash) costs quadratic time.
_EMAIL_RE = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]{1,64}(?:\s?@\s?|\s*[(\[{]\s*(?:at|ät)\s*[)\]}]\s*)"
    r"[\w-]+(?:(?:\.|\s*[(\[{]\s*(?:dot|punkt)\s*[)\]}]\s*)[\w-]+)+", re.IGNORECASE)
_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'\])]+", re.IGNORECASE)
# Query/fragment parameters that carry credentials or session identifiers.
_SECRET_PARAM_RE = re.compile(
    r"(?:^|[?&#;])(?:[\w.-]*token|access[_-]?key|api[_-]?key|key|sig|signature|auth\w*|session\w*|sid|"
    r"jwt|code|password|passwd|pw|secret|ticket|login|user(?:name)?|email|mail|sesskey|wstoken)=",
    re.IGNORECASE)
# A long random-looking path segment (a link with an embedded token), at least one digit and one letter.
_TOKEN_SEGMENT_RE = re.compile(r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_-]{24,})(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])"
                               r"[A-Za-z0-9_-]{24,}")
# Groups are upper case (as printed on cards), so a following lower-case word is never swallowed.
_IBAN_RE = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_PHONE_RES = (
    re.compile(r"(?<![\w+])(?:\+|00)[1-9][\d \t()./-]{5,22}\d(?!\w)"),
    re.compile(r"(?<![\w.,])\(?0\d{1,5}\)?(?:[ \t]?[/-][ \t]?|[ \t])?\d{2,}(?:[ \t.-]?\d{2,})*(?![\w,])"),
    re.compile(r"(?<![\w.])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\w.])"),
)
# Matriculation / student numbers announced by a keyword; institution-specific shapes come from configuration.
_MATRICULATION_RE = re.compile(
    r"(?P<kw>\b(?:matrikel(?:nummer|nr\.?|-nr\.?)?|matr\.?\s*-?\s*nr\.?|mat\.?-?nr\.?|student\s*(?:id|number|no\.?)"
    r"|studierenden-?nummer|immatrikulationsnummer)\s*[:#.]?\s*(?:ist|is|lautet)?\s*)(?P<num>[A-Z]*\d[\dA-Z-]{3,14})",
    re.IGNORECASE)
_MULTI_NAME_RE = re.compile(r"\[name\](?:[\s-]+\[name\])+")

# Name particles and titles are part of a full name but never scrubbed alone ("von" is also a word).
_NOT_A_NAME = frozenset({
    "von", "van", "vom", "zu", "zum", "zur", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "la", "le",
    "ten", "ter", "und", "and", "dr", "prof", "herr", "frau", "mr", "mrs", "ms", "jr", "sr", "name", "email",
    "phone", "iban", "url", "id"})
_SUFFIX = r"(?:'s|’s|'|’|s|es|n|en|ns|sche[nmrs]?)?"


def fold(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Lower-case, accent-free, ``ae/oe/ue`` -> ``a/o/u`` form of ``text``, with each char's source span."""
    chars: list[tuple[str, int, int]] = []
    for index, char in enumerate(text):
        lowered = char.lower()
        if lowered == "ß":
            chars += [("s", index, index + 1), ("s", index, index + 1)]
            continue
        decomposed = unicodedata.normalize("NFKD", lowered)
        base = "".join(c for c in decomposed if not unicodedata.combining(c)) or lowered
        for c in base:
            chars.append((c, index, index + 1))
    # German transliterations: "Mueller", "Müller" and "Muller" all fold to "muller".
    out: list[tuple[str, int, int]] = []
    for c, start, end in chars:
        if c == "e" and out and out[-1][0] in "aou" and out[-1][2] == start and out[-1][1] != start:
            prev = out[-1]
            out[-1] = (prev[0], prev[1], end)
            continue
        out.append((c, start, end))
    return "".join(c for c, _s, _e in out), [(s, e) for _c, s, e in out]


def name_variants(names: Iterable[str]) -> tuple[str, ...]:
    """Folded name tokens to scrub: every part of given/family/full names, hyphenated wholes and joined forms."""
    tokens: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            continue
        folded, _spans = fold(name)
        words = [w.strip(".'’\"()") for w in re.split(r"[\s,]+", folded) if w.strip(".'’\"()")]
        if len(words) > 1:
            # Forms people use in user names and URLs: "annalenamuller", "annamuller", "amuller".
            family = re.sub(r"[-'’.]", "", words[-1])
            given = [p for p in re.split(r"[-'’.]", words[0]) if p]
            tokens.add(re.sub(r"[-'’.]", "", "".join(words)))
            tokens.update(g + family for g in given)
            if given and len(family) >= 3:
                tokens.add(given[0][0] + family)
        for word in words:
            parts = [p for p in re.split(r"[-'’.]", word) if p]
            candidates = {word, *parts}
            if len(parts) > 1:
                candidates.add("".join(parts))
            for candidate in candidates:
                if len(candidate) >= 2 and candidate not in _NOT_A_NAME and not candidate.isdigit():
                    tokens.add(candidate)
    # Longest first, so "anna-lena" is replaced as a whole before "anna".
    return tuple(sorted(tokens, key=lambda t: (-len(t), t)))


@lru_cache(maxsize=256)
def _name_regex(tokens: tuple[str, ...]) -> re.Pattern[str] | None:
    if not tokens:
        return None
    cyrillic = [t for t in tokens if any("\u0400" <= c <= "\u04ff" for c in t)]
    spaced = [t for t in tokens if not _unspaced_script(t) and t not in cyrillic]
    # Chinese, Japanese and Korean text has no spaces between words: there a name is matched anywhere.
    unspaced = [t for t in tokens if _unspaced_script(t)]
    parts = []
    if spaced:
        parts.append(rf"(?<![^\W_])(?:{'|'.join(re.escape(t) for t in spaced)}){_SUFFIX}(?![^\W\d_])")
    if cyrillic:  # Russian/Ukrainian case endings: "Иванова", "Иванову", "Ивановым"
        parts.append(rf"(?<![^\W_])(?:{'|'.join(re.escape(t) for t in cyrillic)})[а-яёіїє]{{0,3}}(?![^\W\d_])")
    if unspaced:
        parts.append("|".join(re.escape(t) for t in unspaced))
    return re.compile("|".join(f"(?:{p})" for p in parts))


def _unspaced_script(token: str) -> bool:
    return any("\u2e80" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" or "\uf900" <= c <= "\ufaff"
               for c in token)


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def _replace_urls(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        url = match.group(0)
        trailing = ""
        while url and url[-1] in ".,;:!?":
            trailing, url = url[-1] + trailing, url[:-1]
        query = re.split(r"[?#]", url, maxsplit=1)
        secret = len(query) > 1 and _SECRET_PARAM_RE.search(url[len(query[0]):])
        if secret or _TOKEN_SEGMENT_RE.search(query[0]) or "@" in url:
            return URL + trailing
        return url + trailing

    return _URL_RE.sub(repl, text)


def _replace_phones(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        digits = sum(c.isdigit() for c in match.group(0))
        return PHONE if 7 <= digits <= 15 else match.group(0)

    for pattern in _PHONE_RES:
        text = pattern.sub(repl, text)
    return text


def _replace_ibans(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        compact = match.group(0).replace(" ", "")
        # An IBAN has digits after the check digits; plain words like "DE12ABCDEFGHIJKLMNOP" rarely do.
        return IBAN if 15 <= len(compact) <= 34 and sum(c.isdigit() for c in compact[4:]) >= 6 else match.group(0)

    return _IBAN_RE.sub(repl, text)


def _replace_names(text: str, tokens: tuple[str, ...]) -> str:
    pattern = _name_regex(tokens)
    if pattern is None:
        return text
    folded, spans = fold(text)
    matches = list(pattern.finditer(folded))
    for match in reversed(matches):
        start = spans[match.start()][0]
        end = spans[match.end() - 1][1]
        text = text[:start] + NAME + text[end:]
    return _MULTI_NAME_RE.sub(NAME, text) if matches else text


@dataclass(frozen=True)
class Scrubber:
    """Scrubs text of one session: the launch's names plus the institution's extra patterns."""

    names: tuple[str, ...] = ()
    extra_patterns: tuple[str, ...] = ()
    _tokens: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tokens", name_variants(self.names))

    def scrub(self, text: str | None) -> str:
        """The text with personal data replaced by placeholders (``[email]``, ``[phone]``, ``[name]``...)."""
        if not text:
            return text or ""
        text = _replace_urls(text)
        text = _EMAIL_RE.sub(EMAIL, text)
        for pattern in _compiled(self.extra_patterns):
            text = pattern.sub(ID, text)
        text = _MATRICULATION_RE.sub(lambda m: m.group("kw") + ID, text)
        text = _replace_ibans(text)
        text = _replace_phones(text)
        return _replace_names(text, self._tokens)

    def scrub_json(self, value: Any) -> Any:
        """Scrub every string inside a JSON-like value (citations quote material that may name people)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub_json(v) for k, v in value.items()}
        return value


def scrub(text: str, names: Iterable[str] = (), extra_patterns: Iterable[str] = ()) -> str:
    """Scrub one text with the given launch names and extra patterns (see :class:`Scrubber`)."""
    return Scrubber(tuple(names), tuple(extra_patterns)).scrub(text)
