"""Typed ingestion errors whose messages a teacher can act on (shown next to the uploaded file)."""
from __future__ import annotations


class IngestError(Exception):
    """A file could not be turned into text; ``code`` is stable for programs, ``message`` is for teachers."""

    code: str = "ingest_error"

    def __init__(self, code: str, message: str) -> None:
        """Keep a machine-readable code beside the human message."""
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        """The teacher-readable message."""
        return self.message


class EncryptedDocumentError(IngestError):
    """The document is password-protected."""

    def __init__(self, message: str = "This PDF is password-protected. Remove the password "
                 "(e.g. print it to a new PDF) and upload it again.") -> None:
        """Use the stable code ``encrypted``."""
        super().__init__("encrypted", message)


class NoTextLayerError(IngestError):
    """The document has pages but no extractable text (usually a scan)."""

    def __init__(self, message: str = "This PDF contains no text, only images (probably a scan). "
                 "Run text recognition (OCR) on it, or upload the original document.") -> None:
        """Use the stable code ``no_text_layer``."""
        super().__init__("no_text_layer", message)


class CorruptDocumentError(IngestError):
    """The file is damaged or not what its format claims."""

    def __init__(self, message: str = "This file is damaged and cannot be read. "
                 "Open it in its program, save it again and re-upload it.") -> None:
        """Use the stable code ``corrupt``."""
        super().__init__("corrupt", message)


class EmptyDocumentError(IngestError):
    """The file (or its text) is empty."""

    def __init__(self, message: str = "This file contains no text.") -> None:
        """Use the stable code ``empty``."""
        super().__init__("empty", message)


class UnsupportedTypeError(IngestError):
    """The file type is not one the tool reads."""

    def __init__(self, message: str = "This file type is not supported. Upload PDF, Word (.docx), "
                 "PowerPoint (.pptx), HTML, Markdown or plain text.") -> None:
        """Use the stable code ``unsupported_type``."""
        super().__init__("unsupported_type", message)


class FileTooLargeError(IngestError):
    """The file exceeds the configured size limit."""

    def __init__(self, size: int, limit: int) -> None:
        """Say both the size and the limit in megabytes."""
        super().__init__(
            "too_large",
            f"This file is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB. "
            "Split it or compress its images, then upload it again.",
        )


class ArchiveBombError(IngestError):
    """A DOCX/PPTX archive would unpack to an unreasonable size (a zip bomb)."""

    def __init__(self, message: str = "This file would unpack to an unreasonable size and was "
                 "rejected for safety. Save it again from Word or PowerPoint and re-upload it.") -> None:
        """Use the stable code ``archive_bomb``."""
        super().__init__("archive_bomb", message)
