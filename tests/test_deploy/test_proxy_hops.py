"""Behind nginx (COURSEBOTS_PROXY_HOPS=1) the app sees the public scheme, host and client address, never more hops."""
from __future__ import annotations

from pathlib import Path

from flask import jsonify, request

from lti_tool import create_app
from tests.conftest import make_config

HEADERS = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https",
           "X-Forwarded-Host": "bots.example.edu", "X-Forwarded-Port": "443"}


def seen(hops: int, tmp_path: Path) -> dict[str, str]:
    app = create_app(make_config(tmp_path, proxy_hops=hops))
    app.add_url_rule("/_seen", "seen", lambda: jsonify(url=request.url_root, remote=request.remote_addr))
    return app.test_client().get("/_seen", headers=HEADERS, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_json()


def test_one_hop_trusts_nginx_only(tmp_path: Path) -> None:
    # nginx appended the address it saw; the first one is the client's claim and is not trusted with one hop.
    assert seen(1, tmp_path) == {"url": "https://bots.example.edu/", "remote": "198.51.100.7"}


def test_no_hops_trusts_nothing(tmp_path: Path) -> None:
    assert seen(0, tmp_path) == {"url": "http://localhost/", "remote": "127.0.0.1"}
