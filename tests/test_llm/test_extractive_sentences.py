"""The extractive answer quotes whole sentences: a German date, ordinal or abbreviation does not end one."""
from __future__ import annotations

from course_bots.llm.base import GenerationParams, Passage, TokenEvent
from course_bots.llm.extractive import ExtractiveBackend
from retrieval.sentences import split_sentences as sentences_of


def test_dates_ordinals_and_abbreviations_do_not_end_a_sentence() -> None:
    assert sentences_of("Die Klausur ist am 12. Februar. Sie dauert 90 Minuten.") == [
        "Die Klausur ist am 12. Februar.", "Sie dauert 90 Minuten."]
    assert sentences_of("Ein Verfahren, z. B. der Gradientenabstieg, konvergiert. Siehe Kap. 4 bei Prof. Meier.") == [
        "Ein Verfahren, z. B. der Gradientenabstieg, konvergiert.", "Siehe Kap. 4 bei Prof. Meier."]
    assert sentences_of("It ended in 2026. Then it began again!") == ["It ended in 2026.", "Then it began again!"]


def test_the_quoted_date_is_whole() -> None:
    passage = Passage(1, "Organisation.pdf, Seite 2",
                      "Die Anmeldung endet am 30. Januar. Die Klausur ist am 12. Februar. Raum H4 ist reserviert.")
    params = GenerationParams(language="de", sources=(passage,))
    text = "".join(e.text for e in ExtractiveBackend().stream(
        [{"role": "user", "content": "Wann ist die Klausur?"}], params) if isinstance(e, TokenEvent))
    assert "12. Februar" in text
