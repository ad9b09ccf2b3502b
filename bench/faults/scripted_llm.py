"""A scripted OpenAI-compatible streaming server for the fault runs: slow, predictable answers, killable mid-stream.

``python bench/faults/scripted_llm.py --port 8011 --tokens 30 --delay 0.1`` answers every chat completion with
``--tokens`` words, one per ``--delay`` seconds, citing source [1]; ``GET /health`` answers 200. Standard library
only, so it starts in a fraction of a second and a SIGKILL cuts every open stream, as a crashed model server would.
"""
from __future__ import annotations

import argparse
import http.server
import json
import time
from typing import Any

WORDS = ("Osmosis moves water through a membrane towards the side with more dissolved particles, as the "
         "lecture explains on the slide about cells and diffusion [1].").split()


def make_handler(tokens: int, delay: float) -> type[http.server.BaseHTTPRequestHandler]:
    """The request handler answering with ``tokens`` words, ``delay`` seconds apart."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            """Quiet."""

        def handle(self) -> None:
            """Serve; a client that went away is no error."""
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            """Health and the model list."""
            body = json.dumps({"status": "ok", "object": "list",
                               "data": [{"id": "scripted", "object": "model", "created": 0, "owned_by": "bench"}]})
            self._send(200, body.encode(), "application/json")

        def do_POST(self) -> None:
            """A chat completion, streamed word by word."""
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            words = [(WORDS[i % len(WORDS)]) for i in range(min(tokens, int(request.get("max_tokens") or tokens)))]
            if not request.get("stream"):
                answer = {"id": "x", "object": "chat.completion", "created": 0, "model": "scripted",
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": " ".join(words)}}]}
                self._send(200, json.dumps(answer).encode(), "application/json")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i, word in enumerate(words):
                self._chunk({"content": word if i == 0 else " " + word}, None)
                time.sleep(delay)
            self._chunk({}, "stop", usage={"prompt_tokens": 100, "completion_tokens": len(words),
                                           "total_tokens": 100 + len(words)})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _chunk(self, delta: dict[str, Any], finish: str | None, **extra: Any) -> None:
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "scripted",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.1)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer((args.host, args.port), make_handler(args.tokens, args.delay))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
