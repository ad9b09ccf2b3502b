"""A stand-in HTTP server for tests: a request handler class served on 127.0.0.1 (a free port) in daemon threads."""
from __future__ import annotations

import http.server
import threading


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive, chunked answers possible) without access lines on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass


class StubServer:
    """Serves ``handler``; ``base_url`` is its OpenAI-style ``/v1`` root; ``close()`` stops it."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
