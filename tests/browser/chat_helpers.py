"""Helpers shared by the browser tests: a slow fake OpenAI-compatible server and the tool wired to it, a tiny PDF,
an XSS detector, an axe check."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Iterator

import pytest
from flask import Flask, Response, request
from playwright.sync_api import expect
from werkzeug.serving import make_server

from course_bots import backends
from course_bots.chat import conversations
from course_bots.models import CourseBot
from lti_tool.context import SessionToken
from lti_tool.extensions import db


class FakeModelServer:
    """An OpenAI-compatible ``/v1/chat/completions`` that streams a scripted answer token by token, slowly."""

    def __init__(self, answer: str = "", delay_s: float = 0.08, status: dict[str, Any] | None = None,
                 status_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.status, self.status_s = status, status_s  # our model server's queue/warm-up extension
        self.requests: list[dict[str, Any]] = []
        app = Flask("fake-model")

        @app.post("/v1/chat/completions")
        def completions() -> Response:
            body = request.get_json()
            self.requests.append(body)
            return Response(self._stream(body.get("model", "fake")), mimetype="text/event-stream")

        @app.get("/v1/models")
        def models() -> Response:
            return Response(json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}),
                            mimetype="application/json")

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _stream(self, model: str) -> Iterator[str]:
        if self.status:
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                     "choices": [], "coursebots_status": self.status}
            yield f"data: {json.dumps(chunk)}\n\n"
            time.sleep(self.status_s)
        words = self.answer.split(" ")
        for index, word in enumerate(words):
            piece = word if index == len(words) - 1 else word + " "
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                     "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            time.sleep(self.delay_s)
        final = {"id": "c", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.thread.join(5)


def answer_through(monkeypatch: pytest.MonkeyPatch, base_url: str, label: str = "Fake model",
                   timeout_s: float = 60.0) -> None:
    """The tool (running in this process) answers through the OpenAI-compatible server at ``base_url``."""
    entry = backends.ModelEntry(key="", label=label, backend="openai", model="fake", base_url=base_url,
                                timeout_s=timeout_s)
    monkeypatch.setattr(backends, "default_entry", lambda config: entry)
    backends.forget_backends()


def seed_questions(tool_server: Any, text: str, count: int = 5, prefix: str = "", locale: str = "en") -> None:
    """``count`` other students asked ``text`` in the first course (the logs open at the small-course threshold)."""
    with tool_server.app.app_context():
        bot = db.session.query(CourseBot).order_by(CourseBot.id).first()
        now = int(time.time())
        for i in range(count):
            session = SessionToken(issuer=bot.issuer, deployment_id=bot.deployment_id, bot_id=bot.id,
                                   pseudonym=prefix + str(i).zfill(64 - len(prefix)), roles=("learner",),
                                   locale=locale, expires_at=now + 600, launched_at=now)
            conversations.record_question(session, None, f"{prefix}-seed-{i}".lstrip("-"), text)
        db.session.commit()


def axe_clean(target: Any, where: str) -> None:
    """axe-core finds nothing on ``target`` (a page, or the tool's frame) as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(target)
    assert results.violations_count == 0, f"{where}: " + results.generate_report()


def tiny_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one page per list of text lines (Helvetica), enough for the PDF loader."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    count = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {count} >>"]
    font = 3 + 2 * count
    for i, lines in enumerate(pages):
        content = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({escape(line)}) Tj T*" for line in lines) + " ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>")
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


# Installed in the tool's frame before anything else runs: records CSP violations (an inline handler or script
# that tried to run) and, on demand, scans the DOM for injected active content. ``window.__cbXss`` collects hits.
XSS_DETECTOR = """
(() => {
  window.__cbXss = [];
  document.addEventListener('securitypolicyviolation', e => window.__cbXss.push('csp:' + e.violatedDirective));
  window.__cbXssHit = (what) => window.__cbXss.push('ran:' + what);
  window.__cbScan = () => {
    const hits = [];
    for (const node of document.querySelectorAll('*')) {
      for (const attr of node.attributes) {
        const name = attr.name.toLowerCase(), value = String(attr.value).trim().toLowerCase();
        if (name.startsWith('on')) hits.push('attr:' + node.tagName + '.' + name);
        if ((name === 'href' || name === 'src' || name === 'xlink:href' || name === 'action') &&
            (value.startsWith('javascript:') || value.startsWith('data:text/html'))) hits.push('url:' + node.tagName);
      }
      const tag = node.tagName.toLowerCase();
      const active = ['iframe', 'object', 'embed'].includes(tag) || (tag === 'img' && node.closest('main'));
      if (active) hits.push('tag:' + tag);
      if (tag === 'script' && !node.src && node.type !== 'application/json') hits.push('tag:inline-script');
      if (tag === 'script' && node.src && !node.src.includes('/static/coursebots/')) hits.push('tag:script');
    }
    return hits.concat(window.__cbXss);
  };
})();
"""

XSS_PAYLOADS = [
    "<script>__cbXssHit('script')</script>",
    "<img src=x onerror=__cbXssHit('img')>",
    "[click](javascript:__cbXssHit('link'))",
    "<svg onload=__cbXssHit('svg')></svg>",
    "<math><mtext><img src=x onerror=__cbXssHit('math')></mtext></math>",
    "<a href=\"javascript:__cbXssHit('a')\">x</a>",
    "[x](https://ok.example\" onmouseover=\"__cbXssHit('attr'))",
    "<iframe src=\"javascript:__cbXssHit('iframe')\"></iframe>",
]


DOC_PAGES = [["Photosynthesis in plants", "Photosynthesis converts light energy into chemical energy.",
              "It takes place in the chloroplasts and needs water and carbon dioxide.",
              "Oxygen is released as a by-product of photosynthesis."],
             *[[f"Chapter {n}: {topic}"] + [f"{topic} fact {i}: the {topic.lower()} of the cell is studied in "
                                            f"week {n} with experiment {i} on enzymes, membranes and genes."
                                            for i in range(12)]
               for n, topic in enumerate(["Respiration", "Mitosis", "Genetics", "Ecology"], start=2)]]
TEACHER_PROMPT = "You are the photosynthesis tutor of BIO-101. Always be encouraging."


def chat_ready(frame: Any, accept: bool = True) -> None:
    """Wait until the chat has checked consent, and accept the notice when it is shown."""
    expect(frame.locator('[data-chat="cb"][data-ready="1"]')).to_have_count(1)
    consent = frame.locator('[data-cb="consent-accept"]')
    if accept and consent.is_visible():
        consent.click()
        expect(frame.locator('[data-cb="question"]')).to_be_visible()


def ensure_material(launch: Callable[..., Any], tool_frame: Callable[[Any], Any]) -> Any:
    """As the teacher: set a prompt, upload the PDF (if not there yet), let students open it; returns the page."""
    page = launch("teacher")
    frame = tool_frame(page)
    prompt = frame.locator("#s-prompt")
    expect(prompt).not_to_have_value("")
    prompt.fill(TEACHER_PROMPT)
    frame.locator("#cb-settings button[type=submit]").click()
    expect(frame.locator("#cb-teacher-status")).to_have_text("Settings saved.")
    frame.locator("#tab-materials").click()
    rows = frame.locator("#cb-materials tr", has_text="photosynthesis.pdf")
    frame.wait_for_timeout(500)
    if rows.count() == 0:
        frame.locator("#m-files").set_input_files(
            {"name": "photosynthesis.pdf", "mimeType": "application/pdf", "buffer": tiny_pdf(DOC_PAGES)})
        frame.locator("#cb-upload button[type=submit]").click()
    expect(rows.locator(".cb-mstatus")).to_have_text("ready", timeout=180_000)
    checkbox = rows.locator("input[type=checkbox]")
    if not checkbox.is_checked():
        checkbox.check()
        frame.wait_for_timeout(300)
    return page
