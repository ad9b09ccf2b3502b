"""Our model server's refusals carry the HTTP status a client can act on: 401 wrong key, 400, 429, 503, 504."""
from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from course_bots.llm.base import BackendError, Busy, Timeout, Unavailable
from course_bots.llm.server import BackgroundServer, create_app

ASK = {"model": "tiny", "messages": [{"role": "user", "content": "Wann ist die Klausur?"}]}


class RefusingEngine:
    """An engine whose every submit raises the error a test sets (no model needed to test the HTTP mapping)."""

    def __init__(self) -> None:
        self.error: BackendError = BackendError("boom")

    def submit(self, messages: Any, params: Any, sink: Any, rid: str) -> None:
        """Refuse the request with the configured error."""
        raise self.error

    def cancel(self, rid: str) -> None:
        """Nothing to cancel: nothing was accepted."""


@pytest.fixture(scope="module")
def refusing() -> Iterator[tuple[RefusingEngine, str]]:
    """A model server with API key ``k`` in front of a refusing engine, and its base address."""
    engine = RefusingEngine()
    server = BackgroundServer(create_app(engine, "tiny", api_key="k")).start()  # type: ignore[arg-type]
    yield engine, f"http://{server.host}:{server.port}"
    server.stop()


@pytest.mark.parametrize("path,method", [("/v1/chat/completions", "POST"), ("/v1/models", "GET"),
                                         ("/metrics", "GET")])
@pytest.mark.parametrize("key", [None, "Bearer wrong"])
def test_a_missing_or_wrong_api_key_is_401_not_500(refusing: tuple[RefusingEngine, str], path: str, method: str,
                                                   key: str | None) -> None:
    headers = {"Authorization": key} if key else {}
    response = httpx.request(method, refusing[1] + path, headers=headers, json=ASK, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthorised"


@pytest.mark.parametrize("error,status", [
    (BackendError("Prompt too long.", code="bad_request"), 400),
    (Busy(3), 429),
    (Unavailable("The model is loading."), 503),
    (Timeout("Too slow."), 504),
    (BackendError("Engine crashed."), 500),
    (BackendError("Something new.", code="never_heard_of"), 500),
])
def test_each_error_code_answers_its_http_status(refusing: tuple[RefusingEngine, str], error: BackendError,
                                                 status: int) -> None:
    engine, base = refusing
    engine.error = error
    response = httpx.post(base + "/v1/chat/completions", headers={"Authorization": "Bearer k"}, json=ASK,
                          timeout=10)
    assert response.status_code == status
    assert response.json()["error"]["code"] == error.code
    assert ("Retry-After" in response.headers) == (status == 429)
    assert "WWW-Authenticate" not in response.headers
