"""Dynamic Registration is no port scanner: non-public targets are refused before any connection (unless the
issuer is allow-listed), every refusal answers the same, and the connection goes to the one address resolved.

A guard makes any connection outside 127.0.0.0/8 and ::1 fail the test instead of leaving this machine.
"""
from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from lti_tool.extensions import db
from lti_tool.models import Platform
from tests.test_lti_tool.test_registration import FakeMoodle, counts, register_url

REAL_GETADDRINFO = socket.getaddrinfo
REAL_CONNECT = socket.socket.connect
REAL_CONNECT_EX = socket.socket.connect_ex

NON_PUBLIC = ["10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "127.0.0.1", "0.0.0.0",
              "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
              "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1"]


def fetch_module() -> Any:
    """``lti_tool.safe_fetch``, imported per test: on code without it each test fails on its own."""
    import importlib

    return importlib.import_module("lti_tool.safe_fetch")


def _loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_traffic_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Record and block every connection attempt to an address outside loopback."""
    blocked: list[Any] = []

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            blocked.append(address)
            raise ConnectionRefusedError("test guard: no traffic beyond loopback")
        return REAL_CONNECT(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            blocked.append(address)
            return 111
        return int(REAL_CONNECT_EX(self, address))

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield blocked
    assert blocked == [], "a connection beyond loopback was attempted"


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer lookups of the given names (each call pops the next answer, the last repeats); return the names asked."""
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in answers:
            asked.append(host)
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
            return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def register(client: FlaskClient, config_url: str) -> Any:
    """Open /lti/register as a platform would."""
    return client.get("/lti/register?" + urlencode({"openid_configuration": config_url, "registration_token": "t"}))


def same_answer(response: Any) -> tuple[int, str]:
    """Status and body, without the per-response CSP nonce."""
    return response.status_code, re.sub(r'nonce="[^"]*"', "", response.get_data(as_text=True))


def assert_refused(response: Any) -> None:
    """The one refusal: 403 with the allow-list advice."""
    assert response.status_code == 403, response.get_data(as_text=True)[:300]
    assert "<code>registration_issuer_not_allowed</code>" in response.get_data(as_text=True)


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_names_resolving_to_non_public_addresses_are_refused_before_connecting(
        client: FlaskClient, monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    fake_dns(monkeypatch, {"moodle.campus.test": [address]})
    assert_refused(register(client, "http://moodle.campus.test/mod/lti/openid-configuration.php"))


@pytest.mark.parametrize("host", ["10.1.2.3", "169.254.169.254", "[::1]", "[::ffff:10.0.0.1]", "2130706433",
                                  "0x7f.1", "localhost"])
def test_literal_private_hosts_are_refused_in_any_spelling(client: FlaskClient, host: str) -> None:
    assert_refused(register(client, f"http://{host}/mod/lti/openid-configuration.php"))


def test_a_name_with_one_private_address_among_public_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    safe_fetch = fetch_module()

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 80)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(safe_fetch.FetchRefused):
        safe_fetch.resolve("http://mixed.example/x", allow_private=False)


def test_open_and_closed_loopback_ports_answer_identically(client: FlaskClient) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    try:
        open_answer = register(client, f"http://127.0.0.1:{server.server_port}/mod/lti/openid-configuration.php")
        closed_answer = register(client, f"http://127.0.0.1:{closed}/mod/lti/openid-configuration.php")
        unresolvable = register(client, "http://no-such-host.invalid/mod/lti/openid-configuration.php")
    finally:
        server.shutdown()
        server.server_close()
    assert_refused(open_answer)
    assert _Handler.hits == 0  # refused before connecting
    assert same_answer(open_answer) == same_answer(closed_answer) == same_answer(unresolvable)


class _Handler(BaseHTTPRequestHandler):
    """A small HTTP server for fetch tests; ``routes`` maps a path to (status, headers, body)."""

    hits = 0
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    seen_hosts: list[str] = []

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        type(self).hits += 1
        type(self).seen_hosts.append(self.headers.get("Host", ""))
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[int, type[_Handler]]]:
    """An HTTP/1.0 server on 127.0.0.1 (close-delimited bodies unless Content-Length is sent)."""
    handler = type("Handler", (_Handler,), {"hits": 0, "routes": {}, "seen_hosts": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, handler
    server.shutdown()
    server.server_close()


def test_the_connection_goes_to_the_address_resolved_once(monkeypatch: pytest.MonkeyPatch,
                                                          http_server: tuple[int, type[_Handler]]) -> None:
    safe_fetch = fetch_module()
    port, handler = http_server
    handler.routes["/conf"] = (200, {"Content-Type": "application/json"}, b'{"ok": true}')
    # First answer: the real server; any later answer: an address where nothing listens (DNS rebinding).
    asked = fake_dns(monkeypatch, {"platform.test": ["127.0.0.1", "127.0.0.2"]})
    response = safe_fetch.fetch("GET", f"http://platform.test:{port}/conf", allow_private=True)
    assert response.json() == {"ok": True}
    assert asked == ["platform.test"]
    assert handler.seen_hosts == [f"platform.test:{port}"]  # the original Host header


def test_redirects_are_not_followed(http_server: tuple[int, type[_Handler]]) -> None:
    safe_fetch = fetch_module()
    port, handler = http_server
    handler.routes["/conf"] = (302, {"Location": f"http://127.0.0.1:{port}/elsewhere"}, b"")
    with pytest.raises(safe_fetch.FetchFailed, match="redirect"):
        safe_fetch.fetch("GET", f"http://127.0.0.1:{port}/conf", allow_private=True)
    assert handler.hits == 1


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "close-delimited"])
def test_oversize_answers_are_cut_off(http_server: tuple[int, type[_Handler]], declared: bool) -> None:
    safe_fetch = fetch_module()
    port, handler = http_server
    body = b"x" * 50_000
    handler.routes["/big"] = (200, {"Content-Length": str(len(body))} if declared else {}, body)
    with pytest.raises(safe_fetch.FetchFailed, match="too large"):
        safe_fetch.fetch("GET", f"http://127.0.0.1:{port}/big", allow_private=True, max_bytes=10_000)


def test_a_trickling_server_meets_the_total_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    safe_fetch = fetch_module()
    import time

    stop = threading.Event()

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()
            while not stop.is_set():  # one byte at a time, each well within the read timeout
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(safe_fetch, "TOTAL_SECONDS", 0.3)
    try:
        with pytest.raises(safe_fetch.FetchFailed):
            safe_fetch.fetch("GET", f"http://127.0.0.1:{server.server_port}/", allow_private=True)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    safe_fetch = fetch_module()
    assert not safe_fetch.is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses(address: str) -> None:
    safe_fetch = fetch_module()
    assert safe_fetch.is_public_address(address)


def test_an_allow_listed_campus_moodle_on_a_private_name_registers(
        make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    """A campus Moodle whose name resolves to a private address (here loopback) works once its issuer is listed."""
    from werkzeug.serving import make_server

    moodle = FakeMoodle()
    server = make_server("127.0.0.1", 0, moodle.app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    moodle.base = f"http://moodle.campus.test:{server.server_port}"
    try:
        refused = make_app()
        with refused.app_context():
            upgrade()
        fake_dns(monkeypatch, {"moodle.campus.test": ["127.0.0.1"]})
        assert_refused(refused.test_client().get(register_url(moodle)))
        assert moodle.requests == []

        application = make_app(registration_allowed_issuers=(moodle.base,))
        # First answer: the campus Moodle; any later answer: an address where nothing listens (DNS rebinding).
        asked = fake_dns(monkeypatch, {"moodle.campus.test": ["127.0.0.1", "127.0.0.2"]})
        response = application.test_client().get(register_url(moodle))
    finally:
        server.shutdown()
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert counts(application) == (1, 1)
    # Configuration GET and registration POST both went to the first answer, asked for once per registration.
    assert [r["host"] for r in moodle.requests] == [f"moodle.campus.test:{server.server_port}"] * 2
    assert asked == ["moodle.campus.test"]


def test_a_dynamically_registered_key_set_on_a_private_address_needs_the_allow_list(
        app: Flask, client: FlaskClient, registered_platform: Any) -> None:
    """A platform's key set URL comes from its own configuration: fetched like the registration, no SSRF."""
    from dataclasses import replace

    from sqlalchemy import select

    with app.app_context():
        platform = db.session.scalars(select(Platform)).one()
        platform.registered_via = "dynamic"
        db.session.commit()
    response = registered_platform.launch(client)
    assert response.status_code == 502 and b"<code>jwks_unreachable</code>" in response.data
    assert registered_platform.jwks_requests == 0

    config = app.extensions["coursebots.config"]
    app.extensions["coursebots.config"] = replace(config, registration_allowed_issuers=(registered_platform.issuer,))
    assert registered_platform.launch(client).status_code == 200
    assert registered_platform.jwks_requests == 1
