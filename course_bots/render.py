"""The only place HTML is made from model or teacher text: markdown + math -> HTML -> bleach (one allowlist).

Markdown (code blocks, lists, tables) is rendered by markdown-it with raw HTML disabled; LaTeX between ``$…$``,
``$$…$$``, ``\\(…\\)`` and ``\\[…\\]`` becomes MathML on the server (no CDN, no script). Whatever the renderers
produce then passes through :func:`sanitize` with :data:`ALLOWED_TAGS`/:data:`ALLOWED_ATTRIBUTES`, so a bug in
either renderer cannot smuggle script into a page. Citation markers ``[n]`` become buttons the page wires up.
"""
from __future__ import annotations

import html
import logging
import re
import secrets
from typing import Any, Collection

import bleach
from markdown_it import MarkdownIt

from course_bots.llm.sources import passage_markdown

logger = logging.getLogger(__name__)

ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

_MATHML_TAGS = frozenset({
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub",
    "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle",
    "menclose", "mpadded", "mphantom", "merror",
})
ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a", "span", "sup", "sub",
    "button",
}) | _MATHML_TAGS
_MATHML_ATTRS = ["display", "xmlns", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace",
                 "accent", "accentunder", "displaystyle", "scriptlevel", "columnalign", "rowalign", "width",
                 "height", "depth", "linethickness", "notation", "minsize", "maxsize", "movablelimits",
                 "symmetric", "largeop", "form", "encoding"]
ALLOWED_ATTRIBUTES: dict[str, list[str]] = {
    "a": ["href", "title", "rel", "target"],
    "code": ["class"],
    "ol": ["start"],
    "th": ["scope"],
    "button": ["type", "class", "data-cite", "aria-label"],
    "span": ["class"],
    **{tag: _MATHML_ATTRS for tag in _MATHML_TAGS},
}

_MATH = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$\w])\$(?!\s)([^$\n]+?)(?<!\s)\$(?![\w$])",
                   re.S)
_CODE = re.compile(r"(^|\n)(```|~~~)[^\n]*\n.*?(\n\2[ \t]*(?=\n|$)|$)|`+[^`\n]*`+", re.S)
_CITE = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_PROTECTED = re.compile(r"(<pre\b.*?</pre>|<code\b.*?</code>|<math\b.*?</math>|<a\b.*?</a>|<[^>]+>)", re.S)


def _markdown() -> MarkdownIt:
    """markdown-it (CommonMark + tables + strikethrough) with raw HTML off and only safe link schemes."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = _safe_url  # type: ignore[method-assign]

    def link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", LINK_REL)
        tokens[idx].attrSet("target", "_blank")
        return str(self.renderToken(tokens, idx, options, env))

    def image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        # Images would load third-party content (and track readers): show the alt text instead.
        return html.escape(tokens[idx].content or "")

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("image", image)
    return md


def _safe_url(url: str) -> bool:
    """Only absolute http(s) and mailto links survive (no javascript:, data:, relative or protocol-relative)."""
    cleaned = re.sub(r"[\x00-\x20]", "", html.unescape(url)).lower()
    return cleaned.startswith(("http://", "https://", "mailto:"))


_MD = _markdown()


def latex_to_mathml(latex: str, display: bool = False) -> str:
    """MathML for one LaTeX expression; the escaped source in ``<code>`` when it cannot be converted."""
    from latex2mathml.converter import convert  # loaded with the first formula: most answers have none

    try:
        return str(convert(latex.strip(), display="block" if display else "inline"))
    except Exception:  # latex2mathml raises many types on bad input; the reader still sees the source
        logger.debug("LaTeX expression could not be converted")
        return f'<code class="math-source">{html.escape(latex)}</code>'


def _protect_math(text: str) -> tuple[str, dict[str, str]]:
    """Replace math (outside code) by placeholders that markdown leaves alone."""
    stash: dict[str, str] = {}
    nonce = secrets.token_hex(4)

    def math(match: re.Match[str]) -> str:
        display_src = match.group(1) or match.group(2)
        latex = display_src if display_src is not None else (match.group(3) or match.group(4) or "")
        key = f"CBMATH{nonce}X{len(stash)}X"
        stash[key] = latex_to_mathml(latex, display=display_src is not None)
        return key

    out: list[str] = []
    last = 0
    for code in _CODE.finditer(text):
        out.append(_MATH.sub(math, text[last:code.start()]))
        out.append(code.group(0))
        last = code.end()
    out.append(_MATH.sub(math, text[last:]))
    return "".join(out), stash


def _cite_buttons(rendered: str, numbers: Collection[int] | None) -> str:
    """Turn ``[1]``/``[1, 2]`` in text (not in code, math or links) into citation buttons."""

    def replace(match: re.Match[str]) -> str:
        found = [int(n) for n in re.findall(r"\d+", match.group(1))]
        if numbers is not None and not all(n in numbers for n in found):
            return match.group(0)
        return "".join(f'<button type="button" class="cb-cite" data-cite="{n}" aria-label="Source {n}">[{n}]'
                       f"</button>" for n in found)

    parts = _PROTECTED.split(rendered)
    return "".join(part if i % 2 else _CITE.sub(replace, part) for i, part in enumerate(parts))


def sanitize(fragment: str) -> str:
    """The one allowlist every HTML fragment shown to users passes through."""
    cleaned = bleach.clean(fragment, tags=ALLOWED_TAGS, attributes=_attribute_filter,
                           protocols=ALLOWED_PROTOCOLS, strip=True, strip_comments=True)
    return str(cleaned)


def _attribute_filter(tag: str, name: str, value: str) -> bool:
    """Allowlisted attributes; links additionally need a safe absolute URL and get our rel/target only."""
    if name not in ALLOWED_ATTRIBUTES.get(tag, ()):
        return False
    if tag == "a" and name == "href":
        return _safe_url(value)
    if tag == "a" and name == "rel":
        return value == LINK_REL
    if tag == "a" and name == "target":
        return value == "_blank"
    if tag == "button" and name == "type":
        return value == "button"
    if name == "class":
        return bool(re.fullmatch(r"[A-Za-z0-9_ -]{0,80}", value))
    if name in ("xmlns",):
        return value == "http://www.w3.org/1998/Math/MathML"
    return not re.search(r"[<>\"']|script|javascript|url\(", value, re.I)


def render_markdown(text: str, citations: Collection[int] | None = None) -> str:
    """Sanitized HTML for an answer or a teacher text: markdown, math as MathML, ``[n]`` as citation buttons.

    ``citations`` limits which numbers become buttons (``None``: any number; empty: none).
    """
    protected, stash = _protect_math(text or "")
    rendered = _MD.render(protected)
    for key, mathml in stash.items():
        rendered = rendered.replace(key, mathml)
    if citations is None or citations:
        rendered = _cite_buttons(rendered, citations)
    return sanitize(rendered)


def render_passage(text: str) -> str:
    """Sanitized HTML for a quoted passage of course material: its code stays a code block, its lists lists."""
    return render_markdown(passage_markdown(text), citations=set())


def render_plain(text: str) -> str:
    """Escaped text with line breaks, for short user-provided strings (file names, comments)."""
    return html.escape(text or "").replace("\n", "<br>")
