"""Keeps a private text (the teacher's prompt) out of an answer stream, even when the model echoes it.

The answer is compared with the private text after folding case, accents, width, whitespace and punctuation:
any run of ``window`` folded characters of the answer that also occurs in the folded private text is a leak.
Text is released chunk by chunk, unchanged, only once no leaked run can start inside it: at most the last
``window - 1`` folded characters are held back, and only as long as they still occur in the private text (the
start of an answer that the prompt does not contain is released at once, so the guard adds little to the time
to the first token).

The folding is done one character at a time (NFKD, casefold, keep letters and digits, drop combining marks),
so a chunk boundary anywhere (even between a letter and its accent) gives the same folded text; a leak is
found with a rolling hash of each window looked up in the private text's set of window hashes: constant work
per character, linear in prompt and answer. A hash hit is confirmed by a substring check before it counts.

Runs that also occur in ``public`` texts (the course sources the model was given, the question itself) are
not leaks: quoting the materials must never be withheld because the teacher pasted a sentence of them into the
prompt. Only verbatim (folded) runs are found; a paraphrase or a translation of the prompt is not.
"""
from __future__ import annotations

import unicodedata
from collections import deque
from functools import lru_cache
from typing import Iterable

DEFAULT_WINDOW = 40  # folded characters (letters and digits only): about six to eight words
MIN_WINDOW = 20  # below this, ordinary phrases would match; shorter private texts are not guarded
_BASE = 1_000_003
_MOD = (1 << 61) - 1


def fold_char(char: str) -> str:
    """The folded form of one character: lower-case letters and digits without accents ('' for the rest)."""
    if char.isascii():
        return char.lower() if char.isalnum() else ""
    return "".join(c for c in unicodedata.normalize("NFKD", char).casefold()
                   if c.isalnum() and not unicodedata.combining(c))


def fold(text: str) -> str:
    """``text`` folded character by character (what the guard compares)."""
    return "".join(fold_char(c) for c in text)


def _window_hashes(folded: str, window: int) -> set[int]:
    """The rolling hashes of every ``window``-long run of ``folded``."""
    hashes: set[int] = set()
    if len(folded) < window:
        return hashes
    top = pow(_BASE, window - 1, _MOD)
    value = 0
    for index, char in enumerate(folded):
        if index >= window:
            value = (value - ord(folded[index - window]) * top) % _MOD
        value = (value * _BASE + ord(char)) % _MOD
        if index >= window - 1:
            hashes.add(value)
    return hashes


@lru_cache(maxsize=256)
def _private_index(private: str, window: int) -> tuple[str, frozenset[int]]:
    """The folded private text and its window hashes, once per prompt (every question of a bot shares them)."""
    folded = fold(private)
    size = min(window, len(folded))
    return folded, frozenset(_window_hashes(folded, size)) if size > 0 else frozenset()


class EchoGuard:
    """Fed an answer chunk by chunk; releases the chunks that cannot be part of a leak of ``private``."""

    def __init__(self, private: str, public: Iterable[str] = (), window: int = DEFAULT_WINDOW,
                 min_window: int = MIN_WINDOW) -> None:
        self._private, self._secret = _private_index(private, window)
        self.window = min(window, len(self._private))
        self.active = self.window >= min_window and bool(self._secret)
        self.leaked = False
        # The public texts are folded only when a window of the answer is found in the private text (rare): folding
        # every source of every question up front cost more CPU than guarding the whole answer.
        self._public_raw = tuple(public)
        self._public: str | None = None
        self._pows = [pow(_BASE, k, _MOD) for k in range(max(self.window, 1))]
        self._top = self._pows[-1]
        self._hash = 0
        self._pending: deque[tuple[str, int]] = deque()  # folded characters not yet cleared, with raw offsets
        self._chunks: deque[tuple[int, str]] = deque()  # held chunks with their end offsets
        self._end = 0  # raw characters seen

    def feed(self, text: str) -> list[str]:
        """Take the next chunk; return the chunks (unchanged, in order) that are now safe to show."""
        if self.leaked:
            return []
        if not self.active:
            return [text]
        start = self._end
        self._end += len(text)
        self._chunks.append((self._end, text))
        for offset, char in enumerate(text, start):
            for folded in fold_char(char):
                if self._push(folded, offset):
                    released = self._release()  # what lies wholly before the leaked run is still safe
                    self.leaked = True
                    self._chunks.clear()
                    self._pending.clear()
                    return released
        return self._release()

    def finish(self) -> list[str]:
        """The held-back tail at the end of the stream (empty after a leak): too short to hold a whole window."""
        if self.leaked:
            return []
        released = [text for _end, text in self._chunks]
        self._chunks.clear()
        self._pending.clear()
        return released

    def _trim(self) -> None:
        """Clear held characters no private run can start at: the held text from there on is not in the private text.

        A leaked run starting at the first held character would begin with all held characters, so they would
        occur in the private text; while they do not, that character is safe. (Held characters that occur only in
        the public texts are kept a little longer: conservative, never unsafe.)
        """
        pending, private = self._pending, self._private
        held = "".join([f for f, _o in pending])  # one folded character per held entry: joined once, then sliced
        while held and held not in private:
            held = held[1:]
            first = pending.popleft()[0]
            self._hash = (self._hash - ord(first) * self._pows[len(pending)]) % _MOD

    def _release(self) -> list[str]:
        """Pop the held chunks that end before the first folded character not yet cleared."""
        self._trim()
        safe = self._pending[0][1] if self._pending else self._end
        released = []
        while self._chunks and self._chunks[0][0] <= safe:
            released.append(self._chunks.popleft()[1])
        return released

    def _push(self, folded: str, offset: int) -> bool:
        """Add one folded character; True when the window it completes is a run of the private text."""
        self._pending.append((folded, offset))
        self._hash = (self._hash * _BASE + ord(folded)) % _MOD
        if len(self._pending) < self.window:
            return False
        if self._hash in self._secret and self._confirmed():
            return True
        first = self._pending.popleft()[0]  # the window starting here is clean: that character is safe
        self._hash = (self._hash - ord(first) * self._top) % _MOD
        return False

    def _confirmed(self) -> bool:
        """The current window really occurs in the private text and not in the public texts (no hash collision)."""
        window = "".join(folded for folded, _offset in self._pending)
        if window not in self._private:
            return False
        if self._public is None:
            self._public = "\x00".join(fold(text) for text in self._public_raw)  # "\x00" never occurs in folded text
        return window not in self._public
