"""Fixtures for the retrieval tests: sample files built on the fly and a tiny local embedding model."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture(scope="session")
def make_pdf() -> Callable[..., bytes]:
    """Build a PDF with reportlab: one list of lines per page, optional header/footer on every page."""

    def build(pages: list[list[str]], header: str | None = None, footer: bool = False) -> bytes:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen import canvas

        buffer = io.BytesIO()
        pdf = canvas.Canvas(buffer, pagesize=A4)
        for number, lines in enumerate(pages, start=1):
            if header:
                pdf.drawString(72, 800, header)
            y = 760
            for line in lines:
                pdf.drawString(72, y, line)
                y -= 16
            if footer:
                pdf.drawString(280, 40, f"Page {number} of {len(pages)}")
            pdf.showPage()
        pdf.save()
        return buffer.getvalue()

    return build


@pytest.fixture(scope="session")
def docx_bytes() -> bytes:
    """A DOCX with two heading levels, body text and a table."""
    import docx

    document = docx.Document()
    document.add_heading("Introduction", level=1)
    document.add_paragraph("Photosynthesis turns light into chemical energy.")
    document.add_heading("Details", level=2)
    document.add_paragraph("Chlorophyll absorbs red and blue light.")
    table = document.add_table(rows=2, cols=3)
    for r, row in enumerate([["Pigment", "Colour", "Peak"], ["Chlorophyll a", "green", "430 nm"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_heading("Summary", level=1)
    document.add_paragraph("Plants need light.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def pptx_bytes() -> bytes:
    """A PPTX with two titled slides, one of them with speaker notes."""
    import pptx

    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]
    for title, body, notes in [("Sorting", "Quicksort splits the array around a pivot.", "Mention worst case."),
                               ("Searching", "Binary search halves the interval.", "")]:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT sentence-transformers model built locally (nothing is downloaded)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny-model")
    words = ("query passage hello world light plant energy sorting search array pivot the a of and is "
             "to in what how why").split()
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":"] + words + [f"##{c}" for c in letters]
    vocab += list("abcdefghijklmnopqrstuvwxyz")
    backend = Tokenizer(WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    hf_dir = root / "hf"
    tokenizer.save_pretrained(str(hf_dir))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(hf_dir))
    transformer = Transformer(str(hf_dir), max_seq_length=32)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model_dir = root / "st"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(model_dir))
    return model_dir


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tiny_model_dir: Path) -> Path:
    """A tiny cross-encoder (BERT with a one-logit head) sharing the tiny model's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    hf_dir = tiny_model_dir.parent / "hf"
    target = tiny_model_dir.parent / "cross"
    config = BertConfig.from_pretrained(str(hf_dir), num_labels=1)
    BertForSequenceClassification(config).save_pretrained(str(target))
    AutoTokenizer.from_pretrained(str(hf_dir)).save_pretrained(str(target))
    return target
