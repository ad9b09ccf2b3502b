"""Build a tiny random-weight chat model on disk, for tests, CPU benchmarks and smoke checks without any hub."""
from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [
    "The lecture covers linear algebra, matrices, vectors and eigenvalues on page four.",
    "Die Vorlesung behandelt Matrizen, Vektoren und Eigenwerte. Übungsblatt drei ist bis Freitag fällig.",
    "Students ask questions about the exam, the slides, the exercises and the reading list.",
    "Studierende fragen nach der Klausur, den Folien, den Übungen und der Literatur.",
    "A chatbot answers with citations [1] and [2] from the course materials.",
    "system user assistant question answer source document page slide",
    "0 1 2 3 4 5 6 7 8 9 ä ö ü ß é è à ç ñ",
]


def build_tiny_model(path: str | Path, *, arch: str = "llama", hidden_size: int = 64, layers: int = 2,
                     vocab_size: int = 512, seed: int = 0) -> Path:
    """Write a random ``arch`` ("llama" or "qwen2") model with a byte-level BPE tokenizer and chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    raw = Tokenizer(models.BPE())
    # Byte-level pieces make every text encodable, so no input ever maps to an unknown token.
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    raw.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token=None, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token=None)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)

    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=2048, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id, bos_token_id=None, tie_word_embeddings=True,
                  initializer_range=0.5)  # large weights: varied (not constant) random text
    config = Qwen2Config(**common) if arch == "qwen2" else LlamaConfig(**common)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    logger.info("Tiny %s model written (%d parameters)", arch, sum(p.numel() for p in model.parameters()))
    return out
