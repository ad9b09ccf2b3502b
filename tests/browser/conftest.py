"""Browser-test harness: the real tool and a fake LTI platform on two sites, driven by headless Chromium.

The tool runs on ``http://localhost:<port>``, the platform on ``http://127.0.0.1:<port>`` (different sites, so a
framed tool sees third-party cookie rules exactly as under Moodle). Fixtures: ``browser`` (session),
``tool_server``, ``platform_server``, ``platform_module``, ``admin_user``, ``launch(role, framed=True, ...) -> Page``,
``tool_frame(page) -> Frame``, ``tool_requests(page)`` and ``screenshot(page, path) -> Path`` (see README.md
here). Every test under ``tests/browser`` is marked ``browser``; without Chromium they skip, or fail under
``CI=true``.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from lti_tool import create_app
from lti_tool.config import Config
from lti_tool.extensions import db
from lti_tool.models import Deployment, Platform
from lti_tool.security import forget_platform_origins
from tests.browser import fake_platform

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`apt-get install chromium`); never `playwright install`
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() == "true"
VIEWPORT = {"width": 1280, "height": 900}
LAUNCH_TIMEOUT_MS = 20_000
EXPECT_TIMEOUT_MS = 15_000
PLATFORM_AUTOPOST_PATHS = ("/mod/lti/launch.php", "/mod/lti/auth.php")  # pages that only auto-submit a form


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``browser``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _unavailable(what: str) -> None:
    """Skip locally, fail under CI=true (same rule as tests/conftest.py)."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} not available")


@dataclass
class Server:
    """A WSGI server running in a daemon thread."""

    server: BaseWSGIServer
    thread: threading.Thread
    base_url: str
    app: Flask

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.thread.join(5)


def serve(host: str, public_host: str) -> tuple[BaseWSGIServer, str]:
    """Bind a threaded server on a free port (app attached later, once its URL is known)."""
    server = make_server(host, 0, lambda environ, start_response: [], threaded=True)
    return server, f"http://{public_host}:{server.server_port}"


def start(server: BaseWSGIServer, app: Flask, base_url: str) -> Server:
    """Attach the app and serve forever in a thread."""
    server.app = app
    thread = threading.Thread(target=server.serve_forever, name=f"server {base_url}", daemon=True)
    thread.start()
    return Server(server, thread, base_url, app)


@pytest.fixture(scope="session")
def _sockets() -> Iterator[dict[str, tuple[BaseWSGIServer, str]]]:
    """Both servers' sockets, bound first so each side knows the other's URL."""
    sockets = {"tool": serve("127.0.0.1", "localhost"), "platform": serve("127.0.0.1", "127.0.0.1")}
    yield sockets
    for server, _ in sockets.values():
        server.server_close()


@pytest.fixture(scope="session")
def platform_module() -> Any:
    """The fake platform module: add users with ``USERS[key] = User(...)`` and launch them as ``launch(key)``."""
    return fake_platform


@pytest.fixture
def admin_user(platform_module: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Moodle site administrator (institution Administrator and editing teacher) using German: ``launch("admin")``."""
    user = platform_module.User("1", "Ada", "Admin", "ada.admin@example.edu",
                                (platform_module.INSTITUTION + "Administrator",
                                 platform_module.MEMBERSHIP + "Instructor"), locale="de")
    monkeypatch.setitem(platform_module.USERS, "admin", user)
    yield "admin"


@pytest.fixture(scope="session")
def platform_server(_sockets: dict[str, tuple[BaseWSGIServer, str]]) -> Iterator[Server]:
    """The fake LTI platform on ``http://127.0.0.1:<port>``; ``.app.extensions['state']`` is its PlatformState."""
    server, base_url = _sockets["platform"]
    state = fake_platform.new_platform_state(_sockets["tool"][1])
    state.base_url = base_url
    app = fake_platform.create_platform_app(state)
    app.extensions["state"] = state
    running = start(server, app, base_url)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def tool_server(_sockets: dict[str, tuple[BaseWSGIServer, str]], platform_server: Server,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real tool (migrated, platform registered) on ``http://localhost:<port>``."""
    from flask_migrate import upgrade

    server, base_url = _sockets["tool"]
    folder = tmp_path_factory.mktemp("browser-tool")
    # The fake platform lives on 127.0.0.1: Dynamic Registration needs it allow-listed (like a campus Moodle on
    # 10.x); every browser shares 127.0.0.1, so the per-address login limit is off for this harness.
    config = Config(base_url=base_url, secret_key="browser-secret-key-" + "x" * 32,
                    pseudonym_key="browser-pseudonym-key-" + "y" * 32, testing=True,
                    registration_allowed_issuers=(platform_server.app.extensions["state"].issuer,), lti_rate_limit="",
                    # the same few users ask across every test of the session: fair-use limits only where a test
                    # sets them (test_quota_browser.py)
                    quota_student_burst_per_minute=0, quota_student_questions_per_day=0,
                    database_url=f"sqlite:///{folder / 'tool.sqlite3'}",
                    instance_path=str(folder / "instance")).resolved(str(folder / "instance"))
    app = create_app(config)
    state = platform_server.app.extensions["state"]
    with app.app_context():
        upgrade()
        platform = Platform(issuer=state.issuer, client_id=state.client_id, name="Fake Moodle",
                            auth_login_url=state.url("/mod/lti/auth.php"),
                            auth_token_url=state.url("/mod/lti/token.php"),
                            key_set_url=state.url("/mod/lti/certs.php"), registered_via="manual")
        platform.deployments.append(Deployment(deployment_id=state.deployment_id))
        db.session.add(platform)
        db.session.commit()
    forget_platform_origins()
    running = start(server, app, base_url)
    yield running
    running.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    """The Playwright driver (skips, or fails under CI, without Chromium)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    from playwright.sync_api import expect

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)  # 2 shared CPU cores in CI: be patient
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    """One headless Chromium for the session (Debian's chromium; never ``playwright install``)."""
    chromium = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()


def cookie_blocking_prefs(tool_origin: str, platform_origin: str) -> dict[str, Any]:
    """Chromium preferences blocking the tool's cookies when it is embedded in the platform (like Safari's ITP)."""
    # Cookie content settings: primary pattern = the cookie's site, secondary = the top-level site.
    rule = {f"{tool_origin},{platform_origin}": {"setting": 2}}
    return {"profile": {"content_settings": {"exceptions": {"cookies": rule}}}}


@pytest.fixture
def launch(browser: Any, playwright_instance: Any, tool_server: Server, platform_server: Server,
           tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``launch(role, framed=True, message="resource", block_frame_cookies=False) -> Page`` from the platform.

    Each launch gets a fresh browser context. ``framed`` shows the tool in the platform's ``#contentframe`` iframe
    (Moodle's embed container); ``block_frame_cookies`` refuses every cookie of the tool while it is embedded in
    the platform (top-level windows of the tool keep cookies). The returned page is the platform's top-level page
    (or the tool's, when not framed) once the launch's auto-posted forms have settled.
    """
    contexts: list[Any] = []
    origin = tool_server.base_url

    def _launch(role: str, framed: bool = True, message: str = "resource",
                block_frame_cookies: bool = False) -> Any:
        if block_frame_cookies:
            user_data = tmp_path / f"chromium-profile-{len(contexts)}"
            (user_data / "Default").mkdir(parents=True)
            prefs = cookie_blocking_prefs(tool_server.base_url, platform_server.base_url)
            (user_data / "Default" / "Preferences").write_text(json.dumps(prefs), encoding="utf-8")
            context = playwright_instance.chromium.launch_persistent_context(
                str(user_data), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport=VIEWPORT)
            page = context.pages[0] if context.pages else context.new_page()
        else:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
        contexts.append(context)
        _TRAFFIC[id(context)] = traffic = []
        context.on("request", lambda req: traffic.append(req) if req.url.startswith(origin + "/") else None)
        context.set_default_timeout(LAUNCH_TIMEOUT_MS)
        query = f"user={role}&message={message}&framed={'1' if framed else '0'}"
        url = f"{platform_server.base_url}/mod/lti/launch.php?{query}"
        page.goto(url)
        try:
            wait_settled(page, framed)
        except AssertionError:
            # Rarely (2 of ~10 CI runs) Playwright loses the tool's cross-process iframe mid-launch and never
            # reaches it again; launching once more in a fresh page is the user's "reload". Twice is a failure.
            page.close()
            page = context.new_page()
            page.goto(url)
            wait_settled(page, framed)
        return page

    yield _launch
    for context in contexts:
        _TRAFFIC.pop(id(context), None)
        context.close()


_TRAFFIC: dict[int, list[Any]] = {}


@pytest.fixture
def tool_requests() -> Callable[[Any], list[Any]]:
    """``tool_requests(page) -> [playwright Request]``: every request the launch's browser context sent to the tool."""
    return lambda page: list(_TRAFFIC.get(id(page.context), ()))


def wait_settled(page: Any, framed: bool, quiet_ms: int = 700, timeout_ms: int = LAUNCH_TIMEOUT_MS) -> None:
    """Wait until the launch's chain of auto-posted forms ends: the shown document stays loaded ``quiet_ms``.

    Unlike ``networkidle`` this ignores a page's own background requests (polling, streaming).
    """
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    last: tuple[str, str] | None = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        try:
            if framed:
                handle = page.query_selector("iframe#contentframe")
                frame = handle.content_frame() if handle else None
            else:
                frame = page.main_frame
            # Not frame.evaluate: it has no timeout, and on a frame swapped between processes mid-navigation
            # (the framed launch crosses origins) it can wait forever; a locator's evaluate is bounded.
            current = (frame.url, frame.locator(":root").evaluate("() => document.readyState", timeout=2000)) \
                if frame else None
        except Exception:  # still loading, or the document was replaced while we asked (a navigation)
            current = None
        url, ready = current if current is not None else ("", "")
        settled = current == last and ready == "complete" and bool(url) \
            and urlsplit(url).path not in PLATFORM_AUTOPOST_PATHS
        if not settled:
            last, stable_since = current, time.monotonic()
        elif (time.monotonic() - stable_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the launch did not settle within {timeout_ms} ms (last document: {last})")


def find_tool_frame(page: Any, tool_base_url: str) -> Any:
    """The frame showing the tool: the platform's ``#contentframe`` when framed, else the page's main frame."""
    if page.url.startswith(tool_base_url):
        return page.main_frame
    handle = page.wait_for_selector("iframe#contentframe", state="attached")
    frame = handle.content_frame()
    assert frame is not None, "the platform's content frame has no document"
    return frame


@pytest.fixture
def tool_frame(tool_server: Server) -> Callable[[Any], Any]:
    """``tool_frame(page) -> Frame``: where the tool is shown after ``launch``."""
    return lambda page: find_tool_frame(page, tool_server.base_url)


def save_screenshot(page: Any, path: str | Path, full_page: bool = True) -> Path:
    """Save a PNG of the page (with the tool's frame, as the user sees it) to ``path``; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=full_page)
    return target


DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Path]:
    """``screenshot(page, path, full_page=True) -> Path``: a PNG; docs/screenshots/ only with --update-screenshots.

    A normal test run must not rewrite committed files, so paths under docs/screenshots/ go to a temporary
    folder unless the run asks to refresh the documentation's pictures.
    """
    refresh = bool(request.config.getoption("--update-screenshots"))

    def take(page: Any, path: str | Path, full_page: bool = True) -> Path:
        target = Path(path)
        if not refresh and DOC_SCREENSHOTS in target.parents:
            target = tmp_path / target.relative_to(DOC_SCREENSHOTS)
        return save_screenshot(page, target, full_page=full_page)

    return take
