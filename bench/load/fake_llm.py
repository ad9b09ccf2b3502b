"""A fake OpenAI-compatible model server that streams every answer at a fixed pace and reports its own TTFT.

``python bench/load/fake_llm.py --port 8011 --tokens 200 --rate 30 --ttft 0.2``: each ``POST /v1/chat/completions``
(streaming) waits ``--ttft`` seconds, then sends ``--tokens`` tokens at ``--rate`` tokens/s, then a usage chunk and
``[DONE]``. Plain asyncio, no web framework, so that the load test's CPU goes to the system under test.

``GET /stats`` returns ``{"requests": n, "open": now, "max_open": m, "ttft": {ref: seconds}}``: the TTFT this
server itself measured per question (request read -> first token written), keyed by the ``ref-xxxx`` word the load
client puts into each question. The load test subtracts it from the client's first-token latency.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

REF = re.compile(r"\bref-([a-z]+)\b")
WORDS = ("The ", "learning ", "rate ", "controls ", "the ", "step ", "size ", "of ", "gradient ", "descent. ")


class FakeServer:
    """State and handlers of the fake model server."""

    def __init__(self, tokens: int, rate: float, ttft: float) -> None:
        """A server answering ``tokens`` tokens at ``rate`` per second after ``ttft`` seconds."""
        self.tokens, self.interval, self.ttft = tokens, 1.0 / rate, ttft
        self.requests = 0
        self.open = 0
        self.max_open = 0
        self.ttfts: dict[str, float] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve HTTP/1.1 requests on one connection until the client closes it."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                arrived = time.monotonic()
                method, path, _ = request_line.split(" ", 2)
                if method == "GET" and path.startswith("/stats"):
                    self._reply_json(writer, {"requests": self.requests, "open": self.open,
                                              "max_open": self.max_open, "ttft": self.ttfts})
                elif method == "GET" and path.startswith("/v1/models"):
                    self._reply_json(writer, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                elif method == "POST" and path.endswith("/chat/completions"):
                    await self._stream(writer, json.loads(body or b"{}"), arrived)
                else:
                    self._reply_json(writer, {"error": {"message": "not found"}}, status="404 Not Found")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _reply_json(self, writer: asyncio.StreamWriter, data: Any, status: str = "200 OK") -> None:
        payload = json.dumps(data).encode()
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                     f"\r\n".encode() + payload)

    async def _stream(self, writer: asyncio.StreamWriter, request: dict[str, Any], arrived: float) -> None:
        self.requests += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        text = " ".join(str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "user")
        refs = REF.findall(text)
        ref = refs[-1] if refs else f"anon{self.requests}"
        count = min(self.tokens, int(request.get("max_tokens") or self.tokens))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            await asyncio.sleep(self.ttft)
            start = time.monotonic()
            for i in range(count):
                chunk = {"id": "c", "object": "chat.completion.chunk", "model": "fake", "created": 0,
                         "choices": [{"index": 0, "delta": {"content": WORDS[i % len(WORDS)]}, "finish_reason": None}]}
                _chunk(writer, chunk)
                await writer.drain()
                if i == 0:
                    self.ttfts[ref] = time.monotonic() - arrived
                # Paced from the start, so a late wake-up does not slow the whole answer down.
                await asyncio.sleep(max(0.0, start + (i + 1) * self.interval - time.monotonic()))
            _chunk(writer, {"id": "c", "object": "chat.completion.chunk", "model": "fake", "created": 0,
                            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            _chunk(writer, {"id": "c", "object": "chat.completion.chunk", "model": "fake", "created": 0, "choices": [],
                            "usage": {"prompt_tokens": 100, "completion_tokens": count, "total_tokens": 100 + count}})
            writer.write(_frame(b"data: [DONE]\n\n"))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            self.open -= 1


def _frame(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _chunk(writer: asyncio.StreamWriter, chunk: dict[str, Any]) -> None:
    writer.write(_frame(b"data: " + json.dumps(chunk).encode() + b"\n\n"))


async def serve(host: str, port: int, tokens: int, rate: float, ttft: float) -> None:
    """Run the fake server until cancelled."""
    fake = FakeServer(tokens, rate, ttft)
    server = await asyncio.start_server(fake.handle, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--ttft", type=float, default=0.2)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.tokens, args.rate, args.ttft))


if __name__ == "__main__":
    main()
