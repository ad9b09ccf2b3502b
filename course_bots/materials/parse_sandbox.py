"""Where an uploaded file is read: a limited child process, one at a time per ingestion thread, retried once.

Parsing untrusted bytes (pdfium, pypdf, python-docx, OCR) never happens in a web or job worker process itself:
:func:`retrieval.loaders.sandbox.load_document_isolated` runs it in a child with ``COURSEBOTS_PARSE_MAX_MEMORY_MB``
of address space and ``COURSEBOTS_PARSE_MAX_SECONDS`` of CPU time. A child that dies is tried once more in a
fresh child (the machine may just have been short of memory); a second death fails the file with the reason.
At most ``COURSEBOTS_INGEST_THREADS`` children parse at the same time in one process, however many files a
request uploads.

The child starts with :func:`child_environment`, never the worker's own: a parser that a hostile file takes over
finds no ``COURSEBOTS_*`` secret (secret key, pseudonym key, database password, API keys) to read.
"""
from __future__ import annotations

import logging
import threading

from course_bots.materials.operations import MB
from lti_tool.config import Config, inheritable_environment
from lti_tool.extensions import current_config
from retrieval.loaders import LoadLimits, OcrProgress
from retrieval.loaders.sandbox import DEFAULT_LOADER, ParserCrashError, SandboxLimits, load_document_isolated
from retrieval.types import Document

log = logging.getLogger(__name__)

CRASH_ATTEMPTS = 2  # a file whose reader dies this many times is marked failed
LOADER = DEFAULT_LOADER
"""The parser the child runs (``module:function``); tests point it at a misbehaving one to crash the child."""

# What a parser child needs of the environment, and nothing else: finding tesseract and shared libraries, temporary
# files, locale, thread counts (OpenMP, BLAS, tesseract), tesseract's models and the Python start-up settings.
# The parser reads no COURSEBOTS_* setting: its limits come in the request on stdin.
CHILD_ENV_NAMES = frozenset({
    "PATH", "HOME", "TMPDIR", "TEMP", "TMP", "LANG", "LANGUAGE", "TZ", "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TESSDATA_PREFIX",
    "PYTHONPATH", "PYTHONHOME", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
})
CHILD_ENV_PREFIXES = ("LC_",)

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def parse_slots(size: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore that bounds concurrent parses (rebuilt only when its size changes)."""
    global _slots
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


def child_environment() -> dict[str, str]:
    """The environment a parser child starts with: this process's allowed variables, no ``COURSEBOTS_*`` one."""
    return inheritable_environment(CHILD_ENV_NAMES, CHILD_ENV_PREFIXES)


def limits_for(config: Config) -> tuple[LoadLimits, SandboxLimits]:
    """Loader and child limits from the configuration.

    Unpacked content may use a quarter of the child's memory: parsers hold several copies of what they unpack,
    so a bomb is refused as a bomb before it can exhaust the child.
    """
    memory = max(config.parse_max_memory_mb, 64) * MB
    unpacked = min(LoadLimits.max_uncompressed_bytes, memory // 4)
    loader = LoadLimits(max_bytes=config.max_upload_mb * MB, ocr=config.ocr_max_pages > 0,
                        ocr_max_pages=max(config.ocr_max_pages, 0), max_uncompressed_bytes=unpacked)
    sandbox = SandboxLimits(max_memory_bytes=memory, max_cpu_seconds=max(config.parse_max_seconds, 1),
                            max_result_bytes=max(128 * MB, 2 * config.max_upload_mb * MB))
    return loader, sandbox


def parse_material(data: bytes, filename: str, media_type: str | None, document_id: str,
                   on_ocr_page: OcrProgress | None = None) -> Document:
    """Read one uploaded file into a Document in a limited child process; raises IngestError (typed) on failure."""
    config = current_config()
    limits, sandbox = limits_for(config)
    with parse_slots(max(1, config.ingest_threads)):
        for attempt in range(1, CRASH_ATTEMPTS + 1):
            try:
                return load_document_isolated(data, filename, media_type, limits, document_id=document_id,
                                              on_ocr_page=on_ocr_page, sandbox=sandbox, loader=LOADER,
                                              env=child_environment())
            except ParserCrashError as exc:
                if attempt == CRASH_ATTEMPTS:
                    raise
                log.warning("the reader of %s died (%s); reading it once more in a fresh process", document_id,
                            exc.kind)
    raise AssertionError("unreachable")
