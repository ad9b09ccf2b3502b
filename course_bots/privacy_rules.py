"""Privacy rules every feature uses: per-course pseudonyms (the frozen contract), labels, the small-course threshold,
retention arithmetic, and PII scrubbing.

Scrubbing: what is stored has placeholders (``[email]``, ``[name]``...) instead of personal data. Patterns err on the
side of privacy: a false ``[phone]`` in a stored log costs little, a leaked phone number costs a lot.

Every pattern here reads untrusted text (questions, feedback, material quoted in answers), so all of them run on
RE2, whose matching time is linear in the text: a backtracking engine took 12-16 s for a 42-digit question. RE2 has
no lookarounds; a pattern that needs a boundary consumes the boundary character around its core group instead,
and :func:`_cores` restarts each search on the previous core's last character so neighbours share boundaries.
Operations on stored data live in :mod:`course_bots.privacy.operations`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator

import re2

EMAIL = "[email]"
PHONE = "[phone]"
IBAN = "[iban]"
URL = "[url]"
ID = "[id]"
NAME = "[name]"

# RE2's \w, \d and \s are ASCII-only; Python's (which these patterns were written for) are Unicode.
_UNICODE_CLASSES = {"w": r"\p{L}\p{N}_", "d": r"\p{Nd}", "s": r"\t-\r\x{1c}-\x{1f}\x{85}\p{Z}"}
_QUIET = re2.Options()
_QUIET.log_errors = False
# Sentinels around the text stand for its start and end in the boundary checks (no pattern counts "\n" as a word).
_EDGE = "\n"


def unicode_re2(pattern: str) -> str:
    r"""``pattern`` (Python syntax) with ``\w``, ``\d`` and ``\s`` spelled as RE2 Unicode classes."""
    out, in_class, index = [], False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if escaped in _UNICODE_CLASSES:
                chars = _UNICODE_CLASSES[escaped]
                out.append(chars if in_class else f"[{chars}]")
            else:
                out.append(pattern[index:index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


def _compile(pattern: str) -> Any:
    return re2.compile(unicode_re2(pattern), _QUIET)


def _cores(pattern: Any, text: str) -> Iterator[tuple[int, int]]:
    """Character spans of the core group (the one capturing group that took part) of each match, left to right."""
    data = (_EDGE + text + _EDGE).encode("utf-8")
    groups = range(1, pattern.groups + 1)
    pos, byte_at, char_at = 0, 0, -1  # byte offset byte_at is character char_at of text (the sentinel is -1)
    while (match := pattern.search(data, pos)) is not None:
        start, end = next(match.span(g) for g in groups if match.start(g) >= 0)
        char_start = char_at + len(data[byte_at:start].decode("utf-8"))
        char_end = char_start + len(data[start:end].decode("utf-8"))
        byte_at, char_at = end, char_end
        yield char_start, char_end
        # The core's last character may be the left boundary of the next match: search again from it.
        last = end - 1
        while last > start and data[last] & 0xC0 == 0x80:
            last -= 1
        pos = max(last, pos + 1)


def _sub(pattern: Any, text: str, repl: Callable[[str], str]) -> str:
    out, last = [], 0
    for start, end in _cores(pattern, text):
        out += [text[last:start], repl(text[start:end])]
        last = end
    out.append(text[last:])
    return "".join(out)


# A local part (from the start of its run: a longer one than the 64 characters an address may have is scrubbed
# whole), "@" or "(at)", a domain.
_EMAIL_RE = _compile(
    r"(?i)[^\w.!#$%&'*+/=?^`{|}~-]([\w.!#$%&'*+/=?^`{|}~-]+(?:\s?@\s?|\s*[(\[{]\s*(?:at|ät)\s*[)\]}]\s*)"
    r"[\w-]+(?:(?:\.|\s*[(\[{]\s*(?:dot|punkt)\s*[)\]}]\s*)[\w-]+)+)")
_URL_RE = _compile(r"(?i)[^\w]((?:https?://|www\.)[^\s<>\"'\])]+)")
# Query/fragment parameters that carry credentials or session identifiers.
_SECRET_PARAM_RE = _compile(
    r"(?i)(?:^|[?&#;])(?:[\w.-]*token|access[_-]?key|api[_-]?key|key|sig|signature|auth\w*|session\w*|sid|"
    r"jwt|code|password|passwd|pw|secret|ticket|login|user(?:name)?|email|mail|sesskey|wstoken)=")
# A long random-looking path segment (a link with an embedded token): a whole run, with a digit and a letter.
_TOKEN_SEGMENT_RE = _compile(r"[A-Za-z0-9_-]{24,}")
# Groups are upper case (as printed on cards), so a following lower-case word is never swallowed.
_IBAN_RE = _compile(r"[^\w]([A-Za-z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?)[^\w]")
_PHONE_RES = (
    _compile(r"[^\w+]((?:\+|00)[1-9][\d \t()./-]{5,22}\d)[^\w]"),
    # Digit groups of two or more with single separators: one way to read each text, so no backtracking anywhere.
    _compile(r"[^\w.,](\(?0\d{1,5}\)?(?:[ \t]?[/-][ \t]?|[ \t])?\d{2,}(?:[ \t.-]\d{2,})*)[^\w,]"),
    _compile(r"[^\w.](\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})[^\w.]"),
)
# Matriculation / student numbers announced by a keyword (kept); institution-specific shapes come from configuration.
_MATRICULATION_RE = _compile(
    r"(?i)[^\w](?:matrikel(?:nummer|nr\.?|-nr\.?)?|matr\.?\s*(?:-\s*)?nr\.?|mat\.?-?nr\.?|student\s*(?:id|number|no\.?)"
    r"|studierenden-?nummer|immatrikulationsnummer)\s*(?:[:#.]\s*)?(?:(?:ist|is|lautet)\s*)?([A-Z]*\d[\dA-Z-]{3,14})")
_MULTI_NAME_RE = _compile(r"\[name\](?:[\s-]+\[name\])+")
_NAME_SEPARATOR_RE = re.compile(r"[\s,]+")
_NAME_PUNCTUATION_RE = re.compile(r"[-'’.]")

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
        words = [w.strip(".'’\"()") for w in _NAME_SEPARATOR_RE.split(folded) if w.strip(".'’\"()")]
        if len(words) > 1:
            # Forms people use in user names and URLs: "annalenamuller", "annamuller", "amuller".
            family = _NAME_PUNCTUATION_RE.sub("", words[-1])
            given = [p for p in _NAME_PUNCTUATION_RE.split(words[0]) if p]
            tokens.add(_NAME_PUNCTUATION_RE.sub("", "".join(words)))
            tokens.update(g + family for g in given)
            if given and len(family) >= 3:
                tokens.add(given[0][0] + family)
        for word in words:
            parts = [p for p in _NAME_PUNCTUATION_RE.split(word) if p]
            candidates = {word, *parts}
            if len(parts) > 1:
                candidates.add("".join(parts))
            for candidate in candidates:
                if len(candidate) >= 2 and candidate not in _NOT_A_NAME and not candidate.isdigit():
                    tokens.add(candidate)
    # Longest first, so "anna-lena" is replaced as a whole before "anna".
    return tuple(sorted(tokens, key=lambda t: (-len(t), t)))


@lru_cache(maxsize=256)
def _name_regex(tokens: tuple[str, ...]) -> Any:
    if not tokens:
        return None
    cyrillic = [t for t in tokens if any("\u0400" <= c <= "\u04ff" for c in t)]
    spaced = [t for t in tokens if not _unspaced_script(t) and t not in cyrillic]
    # Chinese, Japanese and Korean text has no spaces between words: there a name is matched anywhere.
    unspaced = [t for t in tokens if _unspaced_script(t)]
    # Not after a letter or digit; not before a letter (Python's [^\W_] and [^\W\d_]), each consumed as context.
    before, after = r"[^\p{L}\p{N}]", r"[^\p{L}\p{Nl}\p{No}]"
    parts = []
    if spaced:
        parts.append(rf"{before}((?:{'|'.join(re2.escape(t) for t in spaced)}){_SUFFIX}){after}")
    if cyrillic:  # Russian/Ukrainian case endings: "Иванова", "Иванову", "Ивановым"
        parts.append(rf"{before}((?:{'|'.join(re2.escape(t) for t in cyrillic)})[а-яёіїє]{{0,3}}){after}")
    if unspaced:
        parts.append(rf"(?s:.)({'|'.join(re2.escape(t) for t in unspaced)})")
    return _compile("|".join(f"(?:{p})" for p in parts))


def _unspaced_script(token: str) -> bool:
    return any("\u2e80" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" or "\uf900" <= c <= "\ufaff"
               for c in token)


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[Any, ...]:
    # The institution's patterns in RE2 syntax (checked when the configuration is read): linear time as well.
    return tuple(re2.compile(p, _QUIET) for p in patterns)


def _has_token_segment(path: str) -> bool:
    return any(any(c.isdigit() for c in run.group(0)) and any(c.isalpha() for c in run.group(0))
               for run in _TOKEN_SEGMENT_RE.finditer(path))


def _replace_urls(text: str) -> str:
    def repl(url: str) -> str:
        trailing = ""
        while url and url[-1] in ".,;:!?":
            trailing, url = url[-1] + trailing, url[:-1]
        cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
        secret = cut < len(url) and _SECRET_PARAM_RE.search(url[cut:])
        if secret or _has_token_segment(url[:cut]) or "@" in url:
            return URL + trailing
        return url + trailing

    return _sub(_URL_RE, text, repl)


def _replace_phones(text: str) -> str:
    def repl(found: str) -> str:
        return PHONE if 7 <= sum(c.isdigit() for c in found) <= 15 else found

    for pattern in _PHONE_RES:
        text = _sub(pattern, text, repl)
    return text


def _replace_ibans(text: str) -> str:
    def repl(found: str) -> str:
        compact = found.replace(" ", "")
        # An IBAN has digits after the check digits; plain words like "DE12ABCDEFGHIJKLMNOP" rarely do.
        return IBAN if 15 <= len(compact) <= 34 and sum(c.isdigit() for c in compact[4:]) >= 6 else found

    return _sub(_IBAN_RE, text, repl)


def _replace_names(text: str, tokens: tuple[str, ...]) -> str:
    pattern = _name_regex(tokens)
    if pattern is None:
        return text
    folded, spans = fold(text)
    out, last = [], 0
    for start, end in _cores(pattern, folded):
        out += [text[last:spans[start][0]], NAME]
        last = spans[end - 1][1]
    if not out:
        return text
    return _MULTI_NAME_RE.sub(NAME, "".join(out) + text[last:])


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
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (from JSON) cannot be handed to RE2
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        text = _replace_urls(text)
        text = _sub(_EMAIL_RE, text, lambda _found: EMAIL)
        for pattern in _compiled(self.extra_patterns):
            text = pattern.sub(ID, text)
        text = _sub(_MATRICULATION_RE, text, lambda _found: ID)
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


def pseudonym(key: str, issuer: str, sub: str, bot_id: int) -> str:
    """HMAC-SHA256(key, json.dumps([issuer, sub, bot_id])) as hex: stable per course, unlinkable across courses."""
    message = json.dumps([issuer, sub, bot_id]).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def anonymous_pseudonym() -> str:
    """A per-session pseudonym for launches without ``sub`` (never linkable to anything)."""
    return "anon-" + secrets.token_hex(28)


# Words of the labels teachers see ("Student 17"); the UI may translate them by ``label_role``.
ROLE_LABELS = {
    "learner": "Student",
    "instructor": "Instructor",
    "teaching_assistant": "Teaching assistant",
    "content_developer": "Content developer",
    "administrator": "Administrator",
}


def label(role: str, number: int | None) -> str:
    """The label a teacher sees for a participant, e.g. "Student 17"; anonymized ones have no number."""
    word = ROLE_LABELS.get(role, "Student")
    return f"{word} {number}" if number else f"{word} (anonymized)"


def logs_open(distinct_students: int, min_students: int) -> bool:
    """Small-course protection: logs open only once at least ``min_students`` distinct students used the bot."""
    return distinct_students >= max(min_students, 1)


@dataclass(frozen=True)
class Retention:
    """Effective retention of one bot, in days (0 = never)."""

    anonymize_days: int
    delete_days: int


def stricter(base: Retention, override: Retention | None) -> Retention:
    """Combine a platform rule with a bot override: the override may only shorten periods."""
    if override is None:
        return base
    return Retention(_shorter(base.anonymize_days, override.anonymize_days),
                     _shorter(base.delete_days, override.delete_days))


def is_stricter_or_equal(base: Retention, candidate: Retention) -> bool:
    """Whether ``candidate`` keeps nothing longer than ``base`` (a bot may only tighten its platform's rule)."""
    return stricter(base, candidate) == candidate


def _shorter(a: int, b: int) -> int:
    # 0 means "never", i.e. infinitely long.
    if a <= 0:
        return max(b, 0)
    if b <= 0:
        return a
    return min(a, b)
