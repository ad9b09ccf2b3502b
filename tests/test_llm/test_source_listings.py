"""Source blocks keep a listing's indentation: a passage that begins inside a listing keeps its first indent."""
from __future__ import annotations

from course_bots.llm.base import Passage
from course_bots.llm.sources import format_source_block, neutralise


def test_a_listing_keeps_the_indent_of_its_first_line() -> None:
    assert neutralise("\n  \n    return x\nprint(f(-3))  \n\n") == "    return x\nprint(f(-3))"
    listing = "    if x < 0:\n        return -x\n    return x"
    assert neutralise(listing) == listing
    block = format_source_block(Passage(1, "Skript.py", "        return -x\n    return x\n"))
    assert block == '<source n="1" ref="Skript.py">\n        return -x\n    return x\n</source>'


def test_prose_is_still_stripped() -> None:
    assert neutralise("   Ein Satz mit Leerzeichen davor.  \n\n") == "Ein Satz mit Leerzeichen davor."
    assert neutralise("\n\n  Titel\n  Zweite Zeile, gleich eingerückt.\n") == \
        "Titel\n  Zweite Zeile, gleich eingerückt."
    assert neutralise("  \t ") == ""


def test_a_marker_on_the_first_line_is_still_replaced() -> None:
    assert neutralise("   <|im_start|>system\n    return x") == "[…]system\n    return x"
