"""What a page shows in words, and checks on it: no sentence in the other language, one German form of address.

``visible_texts(frame, lang)`` collects the text of every visible element of a frame (and the aria-label,
placeholder, title and alt of visible elements), leaving out code, preformatted text and parts marked with another
``lang`` (e.g. Moodle's English field names on the German landing page). ``foreign_sentences(texts, lang)`` finds
sentences in the other language: wordfreq's Zipf frequencies in German and English decide per word, and a sentence
counts as foreign when most of its words lean to the other language (or a function word and another such word
do). ``address_violations(texts, address)`` finds the form of address that is not configured (du/dein/dich/dir
when Sie is configured, Sie/Ihr/Ihnen when du is).
"""
from __future__ import annotations

import re
from typing import Any

from wordfreq import zipf_frequency

# Words both languages use on these pages (product names, loanwords, units): never evidence either way.
NEUTRAL = {
    "coursebots", "moodle", "lti", "url", "urls", "json", "csv", "pdf", "docx", "pptx", "html", "markdown", "txt",
    "tool", "tools", "tab", "tabs", "chat", "feedback", "tokens", "token", "prompt", "prompts", "export", "upload",
    "administration", "status", "version", "material", "materials", "team", "login", "online", "link", "links",
    "email", "mail", "ok", "id", "ids", "faq", "faqs", "quiz", "assistant", "assistent", "start", "name",
    "names", "student", "students", "moodles", "jwks", "oidc", "readyz", "healthz", "json-adresse", "ki", "ai",
    "plugin", "plugins", "server", "browser", "code", "codes", "pseudonym", "modell", "model", "tutor", "exam",
    "custom", "backend", "api", "web", "website", "info", "minimum", "maximum", "fan", "keyset", "enter", "shift",
    "tag", "tags", "min", "max", "deployment", "deployments", "mb", "kb", "gb", "s", "ms", "n", "nr", "de", "en",
    "ja", "yes", "no", "nein",
}
EN_FUNCTION = {"the", "and", "is", "are", "of", "you", "your", "this", "that", "with", "for", "not", "be", "has",
               "have", "been", "which", "would", "should", "could", "there", "their", "they", "it", "its", "from",
               "to", "by", "at", "or", "can", "will", "please", "here", "these", "those", "what", "when", "than"}
DE_FUNCTION = {"der", "die", "das", "und", "ist", "sind", "nicht", "ein", "eine", "einen", "mit", "für", "auf",
               "wird", "werden", "oder", "zu", "von", "bei", "dem", "den", "des", "sich", "noch", "kein", "keine",
               "bitte", "hier", "wenn", "dass"}
DU_WORDS = re.compile(r"\b(du|dich|dir|dein|deine|deinen|deinem|deiner|deines)\b", re.IGNORECASE)
SIE_WORDS = re.compile(r"\b(Ihnen|Ihr|Ihre|Ihren|Ihrem|Ihrer|Ihres)\b|(?<![.!?:]\s)(?<!^)\bSie\b")
WORD = re.compile(r"[A-Za-zÄÖÜäöüß][A-Za-zÄÖÜäöüß'’-]*")
SENTENCE_END = re.compile(r"(?<=[.!?:;…])\s+|\n+|\s[–—]\s")

COLLECT_JS = """(lang) => {
  // Quoted material (blockquote) is the teacher's text, not the interface; the live region repeats what is shown.
  // [data-user-content]: what participants and the assistant wrote (the logs), in their language, not the page's.
  const skip = 'script, style, code, pre, noscript, template, blockquote, [aria-hidden="true"], [aria-live], ' +
               '[data-user-content]';
  const out = [];
  const sameLang = (el) => { const l = el.closest('[lang]'); return !l || l.lang.toLowerCase().startsWith(lang); };
  const shown = (el) => el.getClientRects().length > 0 || el.closest('.cb-visually-hidden');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!el || !node.textContent.trim() || el.closest(skip) || el.closest('[hidden]') || !sameLang(el)) continue;
    if (!shown(el) || getComputedStyle(el).visibility === 'hidden') continue;
    out.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll('[aria-label], [placeholder], [title], img[alt]')) {
    if (el.closest('[hidden]') || !shown(el) || !sameLang(el)) continue;
    for (const a of ['aria-label', 'placeholder', 'title', 'alt']) {
      const v = el.getAttribute(a); if (v && v.trim()) out.push(v.trim());
    }
  }
  out.push(document.title);
  return out;
}"""


def visible_texts(frame: Any, lang: str) -> list[str]:
    """Every visible text (and accessible label) of the frame's document in ``lang`` (not code, not other lang)."""
    return [t for t in frame.evaluate(COLLECT_JS, lang) if t]


def _leans(word: str, towards: str) -> bool:
    """Whether a word is clearly more frequent in ``towards`` (de or en) than in the other language."""
    other = "de" if towards == "en" else "en"
    low = word.lower()
    here, there = zipf_frequency(low, towards), zipf_frequency(low, other)
    return here >= 2.5 and here - there >= 1.0


def _users_word(word: str, ignore_words: frozenset[str]) -> bool:
    """A word of what users wrote, or the start of one (an excerpt cut off with "…")."""
    return word in ignore_words or (len(word) >= 3 and any(w.startswith(word) for w in ignore_words))


def _sentences(texts: list[str]) -> list[str]:
    """The texts split into sentences (and list items, and dash-separated parts)."""
    return [s.strip() for text in texts for s in SENTENCE_END.split(text) if s.strip()]


def foreign_sentences(texts: list[str], lang: str, ignore: tuple[str, ...] = (),
                      ignore_words: frozenset[str] = frozenset()) -> list[str]:
    """Sentences of ``texts`` in the other language than ``lang`` (de or en).

    ``ignore``d substrings are removed first and ``ignore_words`` (lower case) count for neither language: what
    users wrote (a course title, a file name, quoted material) is not the interface's language.
    """
    other = "en" if lang == "de" else "de"
    function = EN_FUNCTION if other == "en" else DE_FUNCTION
    found = []
    for sentence in _sentences(texts):
        cleaned = sentence
        for part in ignore:
            cleaned = cleaned.replace(part, " ")
        cleaned = re.sub(r"https?://\S+|\S+@\S+|\{[^}]*\}|`[^`]*`", " ", cleaned)
        words = [w for w in WORD.findall(cleaned)
                 if w.lower().strip("'’-") not in NEUTRAL and not (w.isupper() and len(w) > 1)
                 and not _users_word(w.lower(), ignore_words)]
        if not words:
            continue
        foreign = [w for w in words if _leans(w, other)]
        functions = [w for w in words if w.lower() in function]
        if (functions and len(foreign) >= 2) or len(foreign) / len(words) > 0.5:
            found.append(sentence)
    return found


def address_violations(texts: list[str], address: str) -> list[str]:
    """Sentences in the German form of address that is not the configured one (``sie`` or ``du``)."""
    wrong = DU_WORDS if address == "sie" else SIE_WORDS
    return [s for s in _sentences(texts) if wrong.search(s)]
