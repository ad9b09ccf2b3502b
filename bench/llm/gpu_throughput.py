"""GPU benchmark: real architectures with random weights through three engines side by side, in one run.

Throughput does not depend on weight values, so a hand-written ``config.json`` (bench/llm/configs/) and random
bf16 weights built on the GPU stand in for the real checkpoint. The same model object runs through our
continuous-batching engine (``course_bots/llm/engine.py``), transformers' own continuous batching (the
``init_continuous_batching`` manager with paged attention, what ``model.generate_batch`` uses) and one static
``model.generate`` batch. Every stream generates exactly ``--tokens`` tokens. Reports per concurrency and engine:
aggregate and per-stream tokens/s, TTFT p50/p95, peak GPU memory, and the fraction of the memory-bandwidth limit
``streams x measured copy bandwidth / (weight bytes + KV bytes read per decode step)``.

Usage (on the GPU host): ``python bench/llm/gpu_throughput.py --config bench/llm/configs/llama-3.1-8b``
Without a GPU: ``python bench/llm/gpu_throughput.py --cpu-tiny`` runs all three engines on CPU with the tiny
random model (``course_bots/llm/tiny.py``) in a minute or two: proof that the script runs, not a throughput figure.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_bots.llm.base import DoneEvent, ErrorEvent, Event, GenerationParams, TokenEvent  # noqa: E402
from course_bots.llm.engine import Engine, EngineOptions  # noqa: E402
from course_bots.llm.runtime import prepare_loaded  # noqa: E402


def word_tokenizer(vocab_size: int, eos_id: int) -> Any:
    """A tokenizer that can decode every id of the model's vocabulary (``t123``), with a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=f"t{eos_id}", pad_token="t0")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return tokenizer


def build_model(config_dir: str, device: str, shrink: bool) -> Any:
    """Random bf16 (CUDA) / fp32 (CPU) weights for the config, created directly on the device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(config_dir)
    if shrink:  # smoke checks on CPU: same architecture, toy sizes
        config.hidden_size, config.intermediate_size, config.num_hidden_layers = 64, 128, 2
        config.num_attention_heads, config.num_key_value_heads, config.vocab_size = 4, 2, 1024
        config.head_dim = 16
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def copy_bandwidth(device: str, megabytes: int = 0) -> float:
    """Measured device memory bandwidth in bytes/s (a copy reads and writes every byte)."""
    import torch

    megabytes = megabytes or (1024 if device.startswith("cuda") else 256)
    src = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    started = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    sync(device)
    return 2 * src.numel() * 10 / (time.perf_counter() - started)


def sync(device: str) -> None:
    """Wait for queued device work."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_engine(engine: Engine, streams: int, prompt_len: int, tokens: int, vocab: int) -> dict[str, float]:
    """``streams`` requests submitted at once; every one generates exactly ``tokens`` tokens."""
    import random

    start = time.perf_counter()
    first: dict[int, float] = {}
    done: dict[int, float] = {}
    finished = threading.Event()
    lock = threading.Lock()

    def sink_for(i: int) -> Any:
        """A sink recording stream ``i``'s first token and end."""
        def sink(event: Event) -> None:
            """Record the time of the first token and of the end."""
            now = time.perf_counter()
            with lock:
                if isinstance(event, TokenEvent) and i not in first:
                    first[i] = now - start
                elif isinstance(event, (DoneEvent, ErrorEvent)):
                    done[i] = now - start
                    if len(done) == streams:
                        finished.set()
        return sink

    params = GenerationParams(max_new_tokens=tokens, ignore_eos=True, timeout_s=3600)
    for i in range(streams):
        prompt = [random.randrange(1, vocab) for _ in range(prompt_len)]
        engine.submit_ids(prompt, params, sink_for(i))
    finished.wait()
    elapsed = max(done.values())
    ttft = sorted(first.values())
    return {"streams": streams, "aggregate_tokens_per_s": streams * tokens / elapsed,
            "per_stream_tokens_per_s": statistics.mean(tokens / (done[i] - first.get(i, 0)) for i in done),
            "ttft_p50_s": ttft[len(ttft) // 2], "ttft_p95_s": ttft[min(len(ttft) - 1, int(len(ttft) * 0.95))],
            "seconds": elapsed}


def transformers_manager(model: Any, max_streams: int, prompt_len: int, tokens: int, device: str) -> Any:
    """transformers' continuous-batching manager (paged KV cache), warmed up and started, sized for the run."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    cuda = device.startswith("cuda")
    page = 256 if cuda else 64
    blocks = max_streams * (-(-(prompt_len + tokens + 8) // page)) + max_streams  # the same room as our engine's
    generation = GenerationConfig(max_new_tokens=tokens, do_sample=False, eos_token_id=-1, pad_token_id=0)
    options: dict[str, Any] = dict(max_requests_per_batch=max_streams, num_blocks=blocks, page_size=page,
                                   max_batch_tokens=max(2048, max_streams + prompt_len))
    if not cuda:
        options["use_cuda_graph"] = False
    manager = model.init_continuous_batching(generation_config=generation,
                                             continuous_batching_config=ContinuousBatchingConfig(**options))
    manager.warmup()
    manager.start()
    return manager


def run_transformers(manager: Any, streams: int, prompt_len: int, tokens: int, vocab: int) -> dict[str, float]:
    """``streams`` requests added at once to transformers' manager; the same figures as :func:`run_engine`."""
    import random

    inputs = [[random.randrange(1, vocab) for _ in range(prompt_len)] for _ in range(streams)]
    start = time.perf_counter()
    ids = set(manager.add_requests(inputs, max_new_tokens=tokens, record_timestamps=True))
    results: dict[str, Any] = {}
    deadline = start + 3600
    while len(results) < len(ids) and time.perf_counter() < deadline:
        result = manager.get_result(timeout=1)
        if result is not None and result.request_id in ids and result.is_finished():
            results[result.request_id] = result
    elapsed = time.perf_counter() - start
    generated = [len(r.generated_tokens) for r in results.values()]
    first = sorted((r.timestamps[0] - start) if r.timestamps else elapsed for r in results.values())
    ends = [r.lifespan[1] - start if r.lifespan[1] > 0 else elapsed for r in results.values()]
    return {"streams": streams, "aggregate_tokens_per_s": sum(generated) / elapsed,
            "per_stream_tokens_per_s": statistics.mean(g / max(1e-9, e - f) for g, e, f in zip(generated, ends, first)),
            "ttft_p50_s": first[len(first) // 2], "ttft_p95_s": first[min(len(first) - 1, int(len(first) * 0.95))],
            "seconds": elapsed, "tokens_per_stream_min": min(generated) if generated else 0,
            "errors": sum(1 for r in results.values() if r.error)}


def static_generate(model: Any, streams: int, prompt_len: int, tokens: int, device: str) -> float:
    """Aggregate tokens/s of one static batch through ``model.generate`` (everyone starts and ends together)."""
    import torch

    ids = torch.randint(1, model.config.vocab_size, (streams, prompt_len), device=device)
    sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                       do_sample=False, pad_token_id=0, eos_token_id=None)
    sync(device)
    return streams * tokens / (time.perf_counter() - started)


def bandwidth_limit(model: Any, streams: int, context: float, bandwidth: float) -> float:
    """Upper bound of aggregate tokens/s when every decode step reads all weights and every stream's KV cache."""
    config = model.config.get_text_config()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    element = next(model.parameters()).element_size()
    kv_per_token = config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * element
    return streams * bandwidth / (weight_bytes + streams * context * kv_per_token)


def main() -> None:
    """Run every concurrency level through the three engines and print/write the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="directory with a config.json")
    parser.add_argument("--cpu-tiny", action="store_true",
                        help="all three engines on CPU with the tiny random model (no GPU needed; a minute or two)")
    parser.add_argument("--streams", default="1,8,32,64")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shrink", action="store_true")
    parser.add_argument("--no-static", action="store_true", help="skip the static-batch generate comparison")
    parser.add_argument("--no-transformers-cb", action="store_true", help="skip transformers' continuous batching")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import torch

    if args.cpu_tiny:
        import tempfile

        from course_bots.llm.tiny import build_tiny_model

        args.config = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="gpu-bench-tiny-")) / "tiny"))
        args.device, args.shrink = "cpu", False
        if args.streams == "1,8,32,64":
            args.streams = "1,4,16"
        if args.tokens == 256:
            args.tokens = 32
        if args.prompt_tokens == 512:
            args.prompt_tokens = 64
        torch.manual_seed(0)
    if not args.config:
        parser.error("--config (or --cpu-tiny) is required")
    streams = [int(s) for s in args.streams.split(",")]
    model = build_model(args.config, args.device, args.shrink)
    config = model.config.get_text_config()
    eos = config.eos_token_id if isinstance(config.eos_token_id, int) else 0
    tokenizer = word_tokenizer(config.vocab_size, eos)
    engine = Engine(args.config, EngineOptions(max_batch=max(streams), max_queue=max(streams), device=args.device,
                                               max_context=args.prompt_tokens + args.tokens + 8),
                    tokenizer=tokenizer, loader=lambda: prepare_loaded(model, tokenizer, None))
    engine.wait_ready()
    bandwidth = copy_bandwidth(args.device)
    run_engine(engine, 2, 16, 4, config.vocab_size)  # warm-up
    manager = None
    if not args.no_transformers_cb:
        manager = transformers_manager(model, max(streams), args.prompt_tokens, args.tokens, args.device)
        run_transformers(manager, 2, 16, 4, config.vocab_size)  # warm-up
    rows = []
    for n in streams:
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        row = run_engine(engine, n, args.prompt_tokens, args.tokens, config.vocab_size)
        row["peak_gpu_memory_gib"] = (torch.cuda.max_memory_allocated() / 2**30
                                      if args.device.startswith("cuda") else 0.0)
        limit = bandwidth_limit(model, n, args.prompt_tokens + args.tokens / 2, bandwidth)
        row["bandwidth_limit_tokens_per_s"] = limit
        row["fraction_of_limit"] = row["aggregate_tokens_per_s"] / limit
        row["static_generate_tokens_per_s"] = (0.0 if args.no_static else
                                               static_generate(model, n, args.prompt_tokens, args.tokens,
                                                               args.device))
        if manager is not None:
            if args.device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            theirs = run_transformers(manager, n, args.prompt_tokens, args.tokens, config.vocab_size)
            theirs["fraction_of_limit"] = theirs["aggregate_tokens_per_s"] / limit
            theirs["peak_gpu_memory_gib"] = (torch.cuda.max_memory_allocated() / 2**30
                                             if args.device.startswith("cuda") else 0.0)
            row["transformers_cb"] = theirs
        rows.append(row)
        print(f"{n:3d} streams: ours {row['aggregate_tokens_per_s']:9.1f} tok/s aggregate, "
              f"{row['per_stream_tokens_per_s']:7.1f} per stream, TTFT p50 {row['ttft_p50_s']:.3f} s "
              f"p95 {row['ttft_p95_s']:.3f} s, {row['peak_gpu_memory_gib']:.1f} GiB, "
              f"{100 * row['fraction_of_limit']:.0f}% of bandwidth limit | static generate "
              f"{row['static_generate_tokens_per_s']:.1f} tok/s", flush=True)
        if "transformers_cb" in row:
            theirs = row["transformers_cb"]
            print(f"{'':13}transformers CB {theirs['aggregate_tokens_per_s']:9.1f} tok/s aggregate, "
                  f"{theirs['per_stream_tokens_per_s']:7.1f} per stream, TTFT p50 {theirs['ttft_p50_s']:.3f} s "
                  f"p95 {theirs['ttft_p95_s']:.3f} s, {100 * theirs['fraction_of_limit']:.0f}% of bandwidth limit"
                  f"{', %d errors' % theirs['errors'] if theirs['errors'] else ''}", flush=True)
    if manager is not None:
        manager.stop(block=True, timeout=30)
    engine.shutdown()
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s on {args.device}", flush=True)
    result = {"config": args.config, "device": torch.cuda.get_device_name() if args.device.startswith("cuda")
              else "cpu", "copy_bandwidth_gb_s": bandwidth / 1e9, "prompt_tokens": args.prompt_tokens,
              "tokens": args.tokens, "torch": torch.__version__, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
