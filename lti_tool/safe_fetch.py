"""Server-to-server HTTP for URLs a caller supplied (Dynamic Registration, platform key sets), without SSRF.

The host is resolved exactly once; every resolved address must be public (unless the caller trusts the target,
e.g. an allow-listed campus platform on 10.x), and the connection goes to that resolved address, with the original
``Host`` header and, for HTTPS, the original name for SNI and certificate checks. A second DNS answer (DNS
rebinding) is never asked for. No redirects are followed; response size and total time are capped.
"""
from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

MAX_RESPONSE_BYTES = 1_000_000  # an OpenID configuration, a registration answer or a JWKS is a few KB
CONNECT_SECONDS = 5.0
READ_SECONDS = 15.0
TOTAL_SECONDS = 20.0  # the whole exchange, also against a server that trickles bytes
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRefused(Exception):
    """The target may not be contacted; ``reason`` is for the server log only, never for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchFailed(Exception):
    """The target was allowed but the exchange failed (network error, timeout, redirect, oversize answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchResponse:
    """A complete, size-capped HTTP answer."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError)."""
        return json.loads(self.body.decode("utf-8"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(text: str) -> bool:
    """Whether an IP address is globally routable: not private, loopback, link-local, multicast, reserved, etc."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            address = embedded
    return bool(address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified))


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the resolved address) and what to tell the server (its name)."""

    scheme: str
    hostname: str
    port: int
    address: str
    path: str

    @property
    def host_header(self) -> str:
        """``Host`` as the URL named it (port only when not the scheme's default)."""
        name = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


class Resolver:
    """Resolves each (host, port) at most once: several fetches of one exchange (a registration) share the answer."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, int], list[str]] = {}

    def addresses(self, hostname: str, port: int) -> list[str]:
        """The addresses of ``hostname`` (raises :class:`FetchRefused` when it does not resolve)."""
        if (hostname, port) not in self._answers:
            try:
                infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise FetchRefused("host does not resolve") from exc
            self._answers[(hostname, port)] = [str(info[4][0]) for info in infos]
        return self._answers[(hostname, port)]


def resolve(url: str, allow_private: bool, resolver: Resolver | None = None) -> Target:
    """Check a URL and resolve its host once (raises :class:`FetchRefused`)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused("malformed URL") from exc
    hostname = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not hostname or parts.username or parts.password:
        raise FetchRefused("not an http(s) URL with a host")
    addresses = (resolver or Resolver()).addresses(hostname, port)
    if not addresses:
        raise FetchRefused("host does not resolve")
    if not allow_private and not all(is_public_address(address) for address in addresses):
        # Every answer must be public: a name with one private address among public ones is refused too.
        raise FetchRefused("host resolves to a non-public address")
    path = parts.path or "/"
    return Target(parts.scheme, hostname, port, addresses[0], path + (f"?{parts.query}" if parts.query else ""))


def _pool(target: Target, read_seconds: float) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=CONNECT_SECONDS, read=read_seconds, total=TOTAL_SECONDS)
    if target.scheme == "https":
        import certifi

        # Connect to the resolved address, but send SNI and verify the certificate for the URL's name.
        return urllib3.HTTPSConnectionPool(target.address, target.port, timeout=timeout, retries=False,
                                           maxsize=1, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
                                           server_hostname=target.hostname, assert_hostname=target.hostname)
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False, maxsize=1)


def fetch(method: str, url: str, *, allow_private: bool, headers: dict[str, str] | None = None,
          json_body: Any = None, max_bytes: int = MAX_RESPONSE_BYTES,
          read_seconds: float | None = None, resolver: Resolver | None = None) -> FetchResponse:
    """One HTTP exchange with a checked target (raises :class:`FetchRefused` or :class:`FetchFailed`)."""
    target = resolve(url, allow_private, resolver)
    sent = {"Host": target.host_header, "Accept-Encoding": "identity", **(headers or {})}
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode("utf-8")
        sent["Content-Type"] = "application/json"
    deadline = time.monotonic() + TOTAL_SECONDS
    pool = _pool(target, READ_SECONDS if read_seconds is None else read_seconds)
    try:
        response = pool.urlopen(method, target.path, body=body, headers=sent, redirect=False, retries=False,
                                preload_content=False, assert_same_host=False)
        try:
            if 300 <= response.status < 400:
                raise FetchFailed("redirect not followed")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchFailed("response too large")
            chunks, size = [], 0
            # read1: whatever has arrived, so a server trickling bytes meets the deadline check.
            while chunk := response.read1(16_384, decode_content=False):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchFailed("response too large")
                if time.monotonic() > deadline:
                    raise FetchFailed("response too slow")
                chunks.append(chunk)
            return FetchResponse(response.status, b"".join(chunks))
        finally:
            response.release_conn()
            response.close()
    except urllib3.exceptions.HTTPError as exc:
        raise FetchFailed(type(exc).__name__) from exc
    except OSError as exc:
        raise FetchFailed(type(exc).__name__) from exc
    finally:
        pool.close()
