"""CPU benchmark: tiny-model throughput through our model server (1/8/32 concurrent streams) vs sequential generate.

Usage: ``python bench/llm/cpu_throughput.py [--streams 1,8,32] [--tokens 64] [--json out.json]``.
Every stream asks for exactly ``--tokens`` new tokens (end-of-sequence ignored), so runs are comparable.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere without installing
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_bots.llm.tiny import build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_server(port: int, timeout: float = 120.0) -> str:
    """Wait until the model server reports a loaded model; return its base URL."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("loaded"):
                return f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the model server did not start")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def sequential_generate(model_dir: str, requests: int, tokens: int) -> dict[str, float]:
    """Plain ``model.generate`` one request after another (no server, no batching)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Frage 0"}], tokenize=False,
                                         add_generation_prompt=True)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm-up
        started = time.perf_counter()
        for _ in range(requests):
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                           do_sample=False, pad_token_id=tokenizer.pad_token_id)
        elapsed = time.perf_counter() - started
    return {"requests": requests, "tokens_per_s": requests * tokens / elapsed, "seconds": elapsed}


def through_server(base_url: str, streams: int, tokens: int) -> dict[str, float]:
    """``streams`` concurrent SSE requests against the model server; aggregate and per-stream figures."""
    import httpx

    ttft: list[float] = []
    per_stream: list[float] = []
    counts: list[int] = []
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(streams)

    def one(i: int) -> None:
        """Stream request ``i`` and record its timings."""
        body = {"model": "tiny", "messages": [{"role": "user", "content": f"Frage {i}"}], "max_tokens": tokens,
                "ignore_eos": True, "stream": True}
        with httpx.Client(timeout=600) as http:
            barrier.wait()
            started = time.perf_counter()
            first = None
            usage = 0
            with http.stream("POST", f"{base_url}/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    chunk = json.loads(line[6:])
                    if first is None and any(c["delta"].get("content") for c in chunk.get("choices", [])):
                        first = time.perf_counter() - started
                    if chunk.get("usage"):
                        usage = chunk["usage"]["completion_tokens"]
            elapsed = time.perf_counter() - started
        with lock:
            spans.append((started, started + elapsed))
            ttft.append(first or elapsed)
            per_stream.append(usage / elapsed)
            counts.append(usage)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # From the first request sent to the last answer finished (client set-up excluded).
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    return {"streams": streams, "aggregate_tokens_per_s": sum(counts) / elapsed,
            "per_stream_tokens_per_s": statistics.mean(per_stream), "ttft_p50_s": percentile(ttft, 50),
            "ttft_p95_s": percentile(ttft, 95), "seconds": elapsed, "tokens": sum(counts)}


def main() -> None:
    """Run the benchmark and print a table (and JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", default="1,8,32")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--model", default=None, help="model dir (default: build the tiny test model)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs per level; the median is reported")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: tiny matrices gain nothing from more, and lose on busy CPUs)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)  # both paths run under the same setting

    model_dir = args.model or str(build_tiny_model(tempfile.mkdtemp(prefix="tiny-bench-")))
    streams = [int(s) for s in args.streams.split(",")]
    results: dict[str, object] = {"tokens_per_request": args.tokens, "torch_threads": torch.get_num_threads(),
                                  "cpus": os.cpu_count()}
    seq_runs = sorted((sequential_generate(model_dir, 4, args.tokens) for _ in range(args.repeat)),
                      key=lambda r: r["tokens_per_s"])
    results["sequential_generate"] = seq_runs[len(seq_runs) // 2]
    # The server runs in its own process, as in production, so client threads do not share its interpreter.
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "course_bots.llm", "--log-level", "WARNING", "serve", "--model", model_dir,
         "--port", str(port), "--max-batch", str(max(streams)), "--max-queue", str(max(streams)),
         "--served-model-name", "tiny"],
        cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)})
    try:
        base_url = wait_for_server(port)
        through_server(base_url, 1, 4)  # warm-up
        rows = []
        for n in streams:  # the median run by aggregate throughput: shared CPUs make single runs noisy
            runs = sorted((through_server(base_url, n, args.tokens) for _ in range(args.repeat)),
                          key=lambda r: r["aggregate_tokens_per_s"])
            rows.append(runs[len(runs) // 2])
    finally:
        server.terminate()
        server.wait(30)
    results["server"] = rows
    seq = results["sequential_generate"]["tokens_per_s"]  # type: ignore[index]
    print(f"sequential generate: {seq:8.1f} tok/s")
    print("streams  aggregate tok/s  per-stream tok/s  TTFT p50 (s)  TTFT p95 (s)  vs sequential")
    for row in rows:
        print(f"{row['streams']:7d}  {row['aggregate_tokens_per_s']:15.1f}  {row['per_stream_tokens_per_s']:16.1f}"
              f"  {row['ttft_p50_s']:12.3f}  {row['ttft_p95_s']:12.3f}  {row['aggregate_tokens_per_s'] / seq:12.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
