"""Fixed templates that add what students add to a question: a greeting, an e-mail sentence, a preamble, a typo.

The e-mail sentence is given as the product's scrubber leaves it (``[email]``): the product scrubs personal data
before it searches. Every template is applied to every development query; the typo is deterministic per query.
"""
from __future__ import annotations

import hashlib
import re
from typing import Callable

GREETING = {"de": "Hallo, {q}", "en": "Hi, {q}"}
EMAIL = {"de": "{q} Meine Mail ist [email].", "en": "{q} My e-mail is [email]."}
PREAMBLE = {
    "de": "Hallo, ich habe eine Frage zu der Vorlesung. Ich habe die Folien gelesen und komme trotzdem nicht "
          "weiter. {q}",
    "en": "Hello, I have a question about the lecture. I read the slides and I am still stuck. {q}",
}
_WORD = re.compile(r"[^\W\d_]{5,}")


def typo(text: str, key: str) -> str:
    """One typo: two adjacent inner letters of one longer word swapped (word and place chosen by ``key``)."""
    words = [m for m in _WORD.finditer(text) if len(set(m.group().lower()[1:-1])) > 1]
    if not words:
        return text
    digest = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16)
    # The longest words carry the content; pick among the two longest.
    words.sort(key=lambda m: -len(m.group()))
    match = words[digest % min(2, len(words))]
    word = match.group()
    positions = [i for i in range(1, len(word) - 2) if word[i].lower() != word[i + 1].lower()]
    if not positions:
        return text
    i = positions[(digest >> 8) % len(positions)]
    swapped = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return text[:match.start()] + swapped + text[match.end():]


def variants(text: str, language: str, key: str) -> dict[str, str]:
    """The original query and its four templated versions, by template name."""
    lang = language if language in GREETING else "en"
    forms: dict[str, Callable[[str], str]] = {
        "original": lambda q: q,
        "greeting": lambda q: GREETING[lang].format(q=q),
        "email": lambda q: EMAIL[lang].format(q=q),
        "preamble": lambda q: PREAMBLE[lang].format(q=q),
        "typo": lambda q: typo(q, key),
    }
    return {name: make(text) for name, make in forms.items()}


def sample(query_ids_by_course: dict[str, list[str]], per_course: int) -> set[str]:
    """A deterministic sample of at most ``per_course`` query ids per course (by hash, not by file order)."""
    chosen: set[str] = set()
    for ids in query_ids_by_course.values():
        chosen.update(sorted(ids, key=lambda i: hashlib.sha1(i.encode("utf-8")).hexdigest())[:per_course])
    return chosen
