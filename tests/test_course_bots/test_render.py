"""One renderer, one allowlist: markdown and math survive, nothing that runs script does."""
from __future__ import annotations

import pytest

from html.parser import HTMLParser

from course_bots.llm.sources import code_fence, looks_like_code
from course_bots.render import ALLOWED_TAGS, render_markdown, render_passage, render_plain, sanitize

XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    '[x](https://ok.example" onmouseover="alert(1))',
    "<svg onload=alert(1)><circle/></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    '<math href="javascript:alert(1)">x</math>',
    "$\\href{javascript:alert(1)}{click}$",
    "$$<img src=x onerror=alert(1)>$$",
    "<iframe src=javascript:alert(1)></iframe>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "![x](https://evil.example/track.png)",
    "[a]: javascript:alert(1)\n\n[link][a]",
    "`<script>alert(1)</script>`",
    "<details open ontoggle=alert(1)>",
]


class Dangers(HTMLParser):
    """Collects everything in an HTML fragment that could run script or load content."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name in ("style", "src", "srcdoc", "formaction", "xlink:href"):
                self.found.append(name)
            if name == "href" and not (value or "").startswith(("https://", "http://", "mailto:")):
                self.found.append(f"href={value}")


def dangers(html: str) -> list[str]:
    parser = Dangers()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_corpus_never_yields_script(payload: str) -> None:
    assert dangers(render_markdown(payload)) == []


@pytest.mark.parametrize("payload", XSS_CORPUS[:3] + XSS_CORPUS[9:12])
def test_control_detector_fires_on_raw_html(payload: str) -> None:
    # Control: the same payloads unsanitized are caught, so the test above can fail.
    assert dangers(payload) != []


def test_markdown_code_lists_tables() -> None:
    html = render_markdown("# T\n\n- a\n- b\n\n1. x\n\n| h | i |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('<b>')\n```")
    for tag in ("<h1>", "<ul>", "<ol>", "<table>", "<th>", "<td>", '<code class="language-python">'):
        assert tag in html
    assert "print(&#x27;&lt;b&gt;&#x27;)" in html or "print('&lt;b&gt;')" in html


def test_math_becomes_mathml_but_not_inside_code() -> None:
    html = render_markdown("Euler: $e^{i\\pi}+1=0$ and \\(x_1\\)\n\n$$\\frac{a}{b}$$\n\n`$x$`")
    assert html.count("<math") == 3 and "<mfrac>" in html and "<msup>" in html
    assert "<code>$x$</code>" in html


def test_links_are_safe_and_open_in_new_tab() -> None:
    html = render_markdown("[docs](https://example.org/a?b=1) [mail](mailto:a@b.c) [rel](/api/v1/x)")
    assert 'href="https://example.org/a?b=1" rel="noopener noreferrer nofollow" target="_blank"' in html
    assert 'href="mailto:a@b.c"' in html and 'href="/api' not in html


def test_citations_become_buttons_only_for_known_numbers() -> None:
    html = render_markdown("Fact [1]. Other [2, 3]. Unknown [9]. Code `[1]`.", citations={1, 2, 3})
    assert html.count('class="cb-cite"') == 3 and "[9]" in html and "<code>[1]</code>" in html
    assert 'class="cb-cite"' not in render_markdown("Fact [1].", citations=set())


def test_sanitize_is_the_one_allowlist() -> None:
    assert sanitize('<button type="submit" onclick="x()">b</button>') == "<button>b</button>"
    assert sanitize('<a href="https://x.org" rel="opener">x</a>') == '<a href="https://x.org">x</a>'


def test_render_plain_escapes() -> None:
    assert render_plain("<b>a</b>\nb") == "&lt;b&gt;a&lt;/b&gt;<br>b"


SLIDE = """Iteratoren in Java
Ein Iterator durchläuft eine Sammlung Element für Element.
Iterator<String> nameIterator = names.iterator();
while (nameIterator.hasNext()) {
String name = nameIterator.next();
System.out.println(name);
}
• erster *Punkt* [3]
• zweiter Punkt
Das ist der Schluss."""


def test_a_quoted_passage_keeps_its_code_block_and_list() -> None:
    out = render_passage(SLIDE)
    assert ("<pre><code>Iterator&lt;String&gt; nameIterator = names.iterator();\n"
            "while (nameIterator.hasNext()) {\n    String name = nameIterator.next();\n") in out  # re-indented
    assert "<ul>\n<li>erster *Punkt* [3]</li>" in out  # a list, its text shown as it is (no emphasis, no cite)
    assert "<p>Das ist der Schluss.</p>" in out and "<button" not in out
    assert render_passage("Das Ergebnis (siehe oben) ist wichtig.\nx = 5") == \
        "<p>Das Ergebnis (siehe oben) ist wichtig.\nx = 5</p>\n"  # prose and lone lines are no code


def test_code_like_lines_and_fences() -> None:
    assert looks_like_code("for (int i = 0; i < n; i++) {") and looks_like_code("}")
    assert looks_like_code("System.out.println(name);")
    assert not looks_like_code("Photosynthesis converts light energy into chemical energy.")
    assert not looks_like_code("Kapitel 2: Vererbung")
    assert code_fence(["a ``` b"]) == "````\na ``` b\n````"  # a fence the code cannot close


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_quoted_passages_are_sanitized(payload: str) -> None:
    assert dangers(render_passage(payload + "\nint x = 1;\nx++;")) == []
    assert dangers(render_passage("int x = 1;\n" + payload + ";\nx++;")) == []  # inside a code block


LISTING = "Beispiel:\n\ndef f(x):\n    if x < 0:\n        return -x\n    return x"


def test_an_indented_listing_stays_one_code_block_with_its_indentation() -> None:
    out = render_passage(LISTING)
    assert out == ("<p>Beispiel:</p>\n<pre><code>def f(x):\n    if x &lt; 0:\n        return -x\n    return x\n"
                   "</code></pre>\n")  # the last line too: ``    return x`` is code, not prose under the block


def test_a_passage_cut_inside_a_listing_keeps_its_first_indent() -> None:
    assert render_passage("    return x\nprint(f(-3))") == "<pre><code>    return x\nprint(f(-3))\n</code></pre>\n"
    assert "<pre><code>def f(x):\n\n    return x\n</code></pre>" in render_passage(
        "Text davor.\ndef f(x):\n\n    return x")  # a blank line inside a listing does not split it


def test_prose_with_stray_indentation_is_still_prose() -> None:
    assert render_passage("  Ein Satz mit Einzug.\n    Noch ein Satz, weiter eingerückt.") == \
        "<p>Ein Satz mit Einzug.<br>\nNoch ein Satz, weiter eingerückt.</p>\n"
