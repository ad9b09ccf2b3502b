"""Slide code keeps its lines from the PDF to the chunk and the quoted passage (student chat, issue #16)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from course_bots.chat.prompting import quote_of
from course_bots.render import render_passage
from retrieval.chunking import chunk_document
from retrieval.loaders import load_document


def _tiny_pdf(pages: list[list[str]]) -> bytes:
    spec = importlib.util.spec_from_file_location(
        "coursebots_pdf_helpers", Path(__file__).resolve().parents[2] / "browser" / "chat_helpers.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_pdf(pages)  # type: ignore[no-any-return]


CODE = ["Iterator<String> nameIterator = names.iterator();", "while (nameIterator.hasNext()) {",
        "String name = nameIterator.next();", "System.out.println(name);", "}"]


def test_slide_code_keeps_its_lines_into_the_chunk_quote_and_code_block() -> None:
    pages = [["Iteratoren in Java", "Ein Iterator durchläuft eine Sammlung Element für Element.", *CODE],
             ["Listen und Mengen", "Eine Liste hat eine Reihenfolge, eine Menge nicht."],
             ["Zusammenfassung", "Iteratoren gibt es für jede Sammlung."]]
    document = load_document(_tiny_pdf(pages), "iteratoren.pdf")
    chunk = next(c for c in chunk_document(document) if "hasNext" in c.text)
    assert "\n".join(CODE) in chunk.text  # the loader and the chunker keep the line breaks
    quote = quote_of(chunk.text)
    assert "\n".join(CODE) in quote  # so does the sources panel's quote
    html = render_passage(quote)
    assert ("<pre><code>Iterator&lt;String&gt; nameIterator = names.iterator();\nwhile (nameIterator.hasNext()) {\n"
            "    String name = nameIterator.next();\n    System.out.println(name);\n}\n</code></pre>") in html
    assert "<p>Iteratoren in Java<br>\nEin Iterator durchläuft eine Sammlung Element für Element.</p>" in html
