"""Token counting without a tokenizer: a conservative estimate with a safety margin."""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Sequence

from .base import Message

_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)
MESSAGE_OVERHEAD = 8  # role markers and separators a chat template adds around every message


def estimate_tokens(text: str, margin: float = 1.15) -> int:
    """An upper estimate of the tokens ``text`` takes in common BPE vocabularies (German included)."""
    if not text:
        return 0
    # ~3 characters per token for German/English subwords; punctuation and numbers split more finely.
    by_chars = len(text) / 3.0
    by_words = len(_WORDS.findall(text)) * 1.4
    return int(math.ceil(max(by_chars, by_words) * margin))


def estimate_messages(messages: Sequence[Message]) -> int:
    """Estimated prompt tokens of a chat, template overhead included."""
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in messages) + MESSAGE_OVERHEAD


def tokenizer_counter(path: str) -> Callable[[Sequence[Message]], int]:
    """Exact counting with a local tokenizer (and its chat template), e.g. the catalogue's ``tokenizer`` path."""
    from .runtime import encode_chat, load_tokenizer

    tokenizer: Any = load_tokenizer(path)

    def count(messages: Sequence[Message]) -> int:
        """Exact prompt tokens with the chat template."""
        return len(encode_chat(tokenizer, messages))

    return count
