"""Cheap German/English detection by stopword ratio (decides stemming per chunk and per query)."""
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
    "wo wollen würde zu zum zur zwar zwischen wird werden wurde wurden sowie bzw".split()
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


def detect_language(text: str, default: str | None = None) -> str | None:
    """Return ``"de"`` or ``"en"`` for the text, or ``default`` when the evidence is too thin."""
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
