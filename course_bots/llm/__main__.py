"""Console entry point without Flask: ``python -m course_bots.llm serve|chat|tiny|catalogue``."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence


def _parser() -> argparse.ArgumentParser:
    """Arguments of every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m course_bots.llm", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a model with an OpenAI-compatible API")
    serve.add_argument("--model", required=True, help="Hugging Face model id or local path")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--max-batch", type=int, default=32)
    serve.add_argument("--max-queue", type=int, default=64)
    serve.add_argument("--idle-unload", type=float, default=None, help="seconds idle before unloading")
    serve.add_argument("--device", default=None)
    serve.add_argument("--max-context", type=int, default=None)
    serve.add_argument("--max-batch-tokens", type=int, default=None,
                       help="KV positions (prompt + answer limit) all running requests may reserve together")
    serve.add_argument("--served-model-name", default=None)
    serve.add_argument("--api-key-file", default=None, help="file holding the key clients must send")

    chat = sub.add_parser("chat", help="stream one completion to the terminal")
    chat.add_argument("text")
    chat.add_argument("--backend", choices=("local", "openai", "extractive"), default="local")
    chat.add_argument("--model", default=None)
    chat.add_argument("--base-url", default=None)
    chat.add_argument("--api-key", default=None)
    chat.add_argument("--api-key-file", default=None, help="file holding the server's API key")
    chat.add_argument("--system", default=None)
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--timeout", type=float, default=120.0)

    tiny = sub.add_parser("tiny", help="write a tiny random model (smoke checks without downloads)")
    tiny.add_argument("path")
    tiny.add_argument("--arch", choices=("llama", "qwen2"), default="llama")

    catalogue = sub.add_parser("catalogue", help="validate and list a model catalogue file")
    catalogue.add_argument("path")
    catalogue.add_argument("--platform", default=None, help="only entries allowed for this platform issuer")
    return parser


def _read_key(path: str | None) -> str | None:
    """The API key stored in a file (kept out of argv and the process listing), or None."""
    if not path:
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip() or None


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from .server import serve

        serve(args.model, args.host, args.port, max_batch=args.max_batch, max_queue=args.max_queue,
              idle_unload_s=args.idle_unload, device=args.device, max_context=args.max_context,
              max_batch_tokens=args.max_batch_tokens, served_model_name=args.served_model_name,
              api_key=_read_key(args.api_key_file))
        return 0
    if args.command == "chat":
        from .cli_support import build_backend, stream_to

        backend = build_backend(args.backend, args.model, args.base_url,
                                args.api_key or _read_key(args.api_key_file))
        try:
            return stream_to(backend, args.text, sys.stdout, system=args.system, max_new_tokens=args.max_tokens,
                             temperature=args.temperature, timeout_s=args.timeout, err=sys.stderr)
        finally:
            close = getattr(backend, "close", None)
            if close is not None:
                close()
    if args.command == "tiny":
        from .tiny import build_tiny_model

        print(build_tiny_model(args.path, arch=args.arch))
        return 0
    from .catalogue import load_catalogue

    for entry in load_catalogue(args.path).allowed_for(args.platform):
        kind = "external" if entry.external else "local"
        print(f"{entry.key}\t{kind}\t{entry.model}\t{entry.context_window}\t{entry.base_url or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
