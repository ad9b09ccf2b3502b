"""Query cleaning before search: what a student writes around a question is not what the course must cover.

Conservative by design: placeholders that the product's scrubber leaves (``[email]``, ``[name]``, …) are
removed, a greeting that opens the question ("Hallo,", "Hi,") is removed, and whole sentences made only of
greeting, preamble or sign-off words ("Ich habe eine Frage zur Vorlesung.", "My e-mail is [email].") are dropped
when another sentence carries content. Every other word stays where it was: "§ 34", dates, room numbers and
course terms are never touched, and a query that would lose everything is returned unchanged.
"""
from __future__ import annotations

import re

from retrieval.language import ENGLISH_STOPWORDS, GERMAN_STOPWORDS
from retrieval.sentences import split_sentences

PLACEHOLDER = re.compile(r"\[(?:email|e-mail|name|phone|iban|url|id)\]", re.IGNORECASE)
# "Meine Mail ist [email]", "my phone number is [phone]", "ich heiße [name]": the phrase goes with its placeholder,
# also when the student did not end the question with a full stop first.
_CONTACT = re.compile(
    r"(?:\b(?:meine|my)\s+(?:e-?mail|mail|mailadresse|e-mail-adresse|adresse|address|telefonnummer|handynummer|"
    r"nummer|phone|phone number|number|name|matrikelnummer|student id)|\bich hei(?:ß|ss)e|\bich bin|\bi am|\bi'm)"
    r"(?:\s+(?:ist|lautet|is))?\s*:?\s*(?=\[(?:email|e-mail|name|phone|iban|url|id)\])", re.IGNORECASE)
_GREETING = re.compile(
    r"^\s*(?:hallo|hello|hi|hey|moin|servus|grüß gott|guten (?:morgen|tag|abend)|good (?:morning|afternoon|evening)"
    r"|sehr geehrte[rs]?|liebe[rs]?|dear)(?: (?:prof\.|dr\.|[^\W\d_]{1,30})){0,4}\s*[,!:]\s*", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Words of greetings, preambles, contact sentences and sign-offs, not of questions about a topic.
META_WORDS = frozenset((
    "hallo hello hi hey moin servus liebe lieber liebes dear sehr geehrte geehrter guten tag morgen abend good "
    "morning afternoon evening frau herr prof professor professorin dr team tutor tutorin "
    "frage fragen question questions kurze kurz short quick eine kleine small bezüglich regarding concerning "
    "vorlesung vorlesungen lecture lectures kurs kurses course modul module seminar "
    "folien slides skript script unterlagen materials material gelesen read angeschaut looked durchgelesen "
    "komme weiter trotzdem still stuck leider unfortunately verstehe verstanden understand understood "
    "bitte please helfen help hilfe danke dank vielen thanks thank grüße gruß gruss grüßen regards best cheers "
    "viele beste freundlichen kind schöne nice mail email e adresse address erreichbar reach erreichen kontakt "
    "contact telefon phone nummer number matrikelnummer matrikel "
    "semester studiere studying student studentin studierende "
    "habe hatte gerne würde wollte möchte want wanted like would ask fragen stellen fragen nachfragen "
    "anbei bescheid let know wissen schreiben write schreibe writing antwort answer voraus advance "
    "name heiße called ich mein meine my i am i'm is".split()))
_STOPWORDS = GERMAN_STOPWORDS | ENGLISH_STOPWORDS


def _sentences(text: str) -> list[str]:
    """Sentences, split after a full stop, ! or ? that ends a word (not after "12." or "z.B.") and at newlines."""
    return [s for line in text.split("\n") for s in split_sentences(line)]


def _is_meta(sentence: str) -> bool:
    """True when the sentence has greeting/preamble/sign-off words and otherwise only stopwords."""
    words = [w.lower() for w in _WORD.findall(sentence)]
    return any(w in META_WORDS for w in words) and all(w in META_WORDS or w in _STOPWORDS for w in words)


def clean_query(text: str) -> str:
    """The question without placeholders, an opening greeting and sentences of greeting, preamble or sign-off."""
    stripped = PLACEHOLDER.sub(" ", _CONTACT.sub(" ", text))
    sentences = [_GREETING.sub("", s, count=1) if i == 0 else s for i, s in enumerate(_sentences(stripped))]
    content = [s for s in sentences if _WORD.search(s) and not _is_meta(s)]
    if not content:
        return text
    cleaned = re.sub(r"\s+", " ", " ".join(s.strip() for s in content))
    return re.sub(r" (?=[.,;:!?])", "", cleaned).strip(" ,;:") or text
