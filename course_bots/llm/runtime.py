"""Model loading, chat templating, incremental detokenisation and the batched KV cache the scheduler shares.

torch and transformers are imported inside functions so that importing this module costs nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from .base import Message

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A causal LM and its tokenizer, ready for the scheduler."""

    model: Any
    tokenizer: Any
    device: Any
    eos_ids: frozenset[int]
    max_context: int


def pick_device(device: str | None = None) -> tuple[str, Any]:
    """The device and dtype to run on: bf16 on CUDA, fp32 on CPU."""
    import torch

    name = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return name, (torch.bfloat16 if name.startswith("cuda") else torch.float32)


def load_tokenizer(model_id: str) -> Any:
    """Load the tokenizer of a model id or local path (offline when HF_HUB_OFFLINE is set)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    if tokenizer.chat_template is None:
        logger.warning("Model has no chat template; a plain role-prefixed format is used")
    return tokenizer


def load_model(model_id: str, tokenizer: Any, device: str | None = None,
               max_context: int | None = None) -> LoadedModel:
    """Load weights of a model id or local path onto the chosen device."""
    from transformers import AutoModelForCausalLM

    dev, dtype = pick_device(device)
    auto: Any = AutoModelForCausalLM  # its decorated from_pretrained confuses type checkers
    model = auto.from_pretrained(model_id, dtype=dtype)
    model.to(dev).eval()
    return prepare_loaded(model, tokenizer, max_context)


def prepare_loaded(model: Any, tokenizer: Any, max_context: int | None = None) -> LoadedModel:
    """Wrap a model already in memory (e.g. random weights for benchmarks) for the scheduler."""
    _check_cache_layout(model)
    eos: set[int] = set()
    for candidate in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(candidate, int):
            eos.add(candidate)
        elif candidate:
            eos.update(int(c) for c in candidate)
    window = int(getattr(model.config.get_text_config(), "max_position_embeddings", 4096) or 4096)
    logger.info("Model ready on %s (%s), context window %d", model.device, model.dtype, window)
    return LoadedModel(model, tokenizer, model.device, frozenset(eos), min(window, max_context or window))


def _check_cache_layout(model: Any) -> None:
    """Refuse models whose cache is not a plain per-layer KV tensor (sliding windows, state-space layers)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    for layer in cache.layers:
        if type(layer) is not DynamicLayer:  # noqa: E721 - subclasses change the memory layout we rely on
            raise ValueError(f"Unsupported cache layer {type(layer).__name__}: this server batches full-attention "
                             "decoder models only")


def encode_chat(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of the chat, rendered with the model's chat template and an open assistant turn."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    if tokenizer.chat_template is not None:
        text = tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in plain) + "assistant: "
    # The template already holds every special token; adding BOS again would double it.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class TextStream:
    """Turns generated ids into text deltas, holding back what could still become a stop string."""

    tokenizer: Any
    stop: tuple[str, ...] = ()
    ids: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    _prefix: int = 0
    _read: int = 0

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add one token; return the text safe to show now and whether a stop string was reached."""
        self.ids.append(token_id)
        before = self.tokenizer.decode(self.ids[self._prefix:self._read], skip_special_tokens=True)
        after = self.tokenizer.decode(self.ids[self._prefix:], skip_special_tokens=True)
        # A trailing U+FFFD means a multi-byte character is incomplete: wait for its next byte.
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before):]
            self._prefix, self._read = self._read, len(self.ids)
        for stop in self.stop:
            at = self.text.find(stop, max(0, self.emitted - len(stop)))
            if at >= 0:
                self.text = self.text[:at]
                return self._take(len(self.text)), True
        hold = max((len(s) for s in self.stop), default=1) - 1
        return self._take(max(self.emitted, len(self.text) - hold)), False

    def flush(self) -> str:
        """All text not yet shown (at the end of a completion)."""
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        """Text from the last emitted position up to ``upto``."""
        piece = self.text[self.emitted:upto]
        self.emitted = max(self.emitted, upto)
        return piece


def _growing_layer_class() -> Any:
    """A ``DynamicLayer`` with spare capacity: appending a token writes in place instead of copying the cache."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """KV tensors are views of a larger buffer; only running out of room (or a batch change) copies."""

        _buffers: Any = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            """Append new keys/values, growing the buffer by a quarter (at least 64 positions) when full."""
            import torch

            if not self.is_initialized or self.keys is None or self.keys.numel() == 0:
                return super().update(key_states, value_states, *args, **kwargs)
            keys: Any = self.keys
            values: Any = self.values
            length, need = keys.shape[-2], keys.shape[-2] + key_states.shape[-2]
            buffers = self._buffers
            # KVBatch replaces keys/values when rows join or leave: then the old buffer no longer backs them.
            if (buffers is None or buffers[0].shape[-2] < need or buffers[0].shape[0] != keys.shape[0]
                    or buffers[0].data_ptr() != keys.data_ptr()):
                shape = (*keys.shape[:-2], need + max(64, need // 4), keys.shape[-1])
                buffers = (torch.empty(shape, dtype=keys.dtype, device=keys.device),
                           torch.empty(shape, dtype=values.dtype, device=values.device))
                buffers[0][..., :length, :] = keys
                buffers[1][..., :length, :] = values
                self._buffers = buffers
            buffers[0][..., length:need, :] = key_states
            buffers[1][..., length:need, :] = value_states
            self.keys, self.values = buffers[0][..., :need, :], buffers[1][..., :need, :]
            return self.keys, self.values

    return GrowingLayer


_GROWING: list[Any] = []  # the GrowingLayer class, made on first use so that importing stays free of torch


def cache_argument(model: Any) -> str:
    """The name under which the model's forward takes its KV cache: ``cache`` in newer transformers.

    transformers 5.x renamed ``past_key_values`` to ``cache`` and warns on every call with the old name (removed in
    5.40); older releases know only ``past_key_values``.
    """
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class KVBatch:
    """The running batch: one left-padded KV cache shared by every active sequence, and its padding mask."""

    def __init__(self, model: Any) -> None:
        if not _GROWING:
            _GROWING.append(_growing_layer_class())
        self.model = model
        self._cache_arg = cache_argument(model)
        self.cache: Any = None
        self.mask: Any = None  # [rows, length] of 0/1: 0 marks left padding

    @property
    def rows(self) -> int:
        """Number of sequences in the batch."""
        return 0 if self.mask is None else int(self.mask.shape[0])

    def prefill(self, prompts: Sequence[Sequence[int]], pad_id: int) -> Any:
        """Run the prompts (left-padded together), add them to the batch, return their last-position logits."""
        import torch
        from transformers import DynamicCache

        device = self.model.device
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt):] = 1
        ids, mask = ids.to(device), mask.to(device)
        cache = DynamicCache(config=self.model.config)
        cache.layers = [_GROWING[0]() for _ in cache.layers] if _GROWING else cache.layers
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self._cache_arg: cache})
        self._merge(cache, mask)
        return out.logits[:, -1, :]

    def decode(self, next_tokens: Any) -> Any:
        """Feed one token per row (all rows in one forward step); return the next-token logits."""
        import torch

        ones = torch.ones((self.rows, 1), dtype=self.mask.dtype, device=self.mask.device)
        positions = self.mask.sum(-1, keepdim=True)  # real tokens so far = position of the fed token
        self.mask = torch.cat([self.mask, ones], dim=-1)
        out = self.model(input_ids=next_tokens.view(-1, 1), attention_mask=self.mask, position_ids=positions,
                         use_cache=True, **{self._cache_arg: self.cache})
        return out.logits[:, -1, :]

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only these rows (finished sequences leave), then drop padding columns no row needs."""
        import torch

        if not rows:
            self.cache, self.mask = None, None
            return
        index = torch.tensor(list(rows), dtype=torch.long, device=self.mask.device)
        self.mask = self.mask.index_select(0, index)
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0]) if used.numel() else 0
        self.mask = self.mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[..., start:, :]
            layer.values = layer.values.index_select(0, index)[..., start:, :]

    def _merge(self, cache: Any, mask: Any) -> None:
        """Append freshly prefilled rows, left-padding whichever side is shorter."""
        import torch
        import torch.nn.functional as F

        if self.cache is None:
            self.cache, self.mask = cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        old_pad, new_pad = width - self.mask.shape[1], width - mask.shape[1]
        self.mask = torch.cat([F.pad(self.mask, (old_pad, 0)), F.pad(mask, (new_pad, 0))], dim=0)
        for mine, theirs in zip(self.cache.layers, cache.layers):
            mine.keys = torch.cat([F.pad(mine.keys, (0, 0, old_pad, 0)), F.pad(theirs.keys, (0, 0, new_pad, 0))])
            mine.values = torch.cat([F.pad(mine.values, (0, 0, old_pad, 0)),
                                     F.pad(theirs.values, (0, 0, new_pad, 0))])


def sample(logits: Any, temperatures: Sequence[float], top_ps: Sequence[float],
           generators: Sequence[Any]) -> list[int]:
    """Pick one token per row: greedy where the temperature is 0, else temperature + nucleus sampling."""
    import torch

    greedy = logits.argmax(dim=-1).tolist()
    picked: list[int] = []
    for row, (temp, top_p) in enumerate(zip(temperatures, top_ps)):
        if temp <= 0:
            picked.append(int(greedy[row]))
            continue
        probs = torch.softmax(logits[row].float() / temp, dim=-1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            cut = sorted_p.cumsum(0) - sorted_p > top_p  # keep the smallest set reaching top_p
            sorted_p[cut] = 0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        picked.append(int(torch.multinomial(probs, 1, generator=generators[row])))
    return picked
