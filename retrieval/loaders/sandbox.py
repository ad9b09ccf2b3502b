"""Parse one untrusted file in a child process whose memory and CPU time the operating system limits.

The parent (:func:`load_document_isolated`) starts a fresh Python running :func:`main`; the child sets
``RLIMIT_AS`` and ``RLIMIT_CPU`` on itself, imports only the loaders (pdfium, pypdf, python-docx, python-pptx,
BeautifulSoup; never torch), reads the file and writes the :class:`~retrieval.types.Document` (or the loader's
typed error) as JSON into a result file. OCR progress comes back as ``progress DONE TOTAL`` lines on a pipe. A
child that runs out of memory, out of CPU time or crashes ends as a :class:`ParserCrashError`; the parent lives on.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, IO, Mapping

from retrieval.errors import IngestError
from retrieval.loaders.limits import LoadLimits, OcrProgress
from retrieval.types import Document, Locator, Section

log = logging.getLogger(__name__)

MB = 1_000_000  # decimal megabytes, as in every limit and message of the product
EXIT_MEMORY = 86  # the child's exit status after a MemoryError
DEFAULT_LOADER = "retrieval.loaders:load_document"
_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the ``retrieval`` package
# Thread pools reserve address space per thread, and RLIMIT_AS counts reservations: one BLAS/OpenMP thread,
# set before numpy loads (the child imports it through retrieval.types).
_CHILD_MAIN = ("import os\n"
               "for name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):\n"
               "    os.environ.setdefault(name, '1')\n"
               "from retrieval.loaders.sandbox import main\n"
               "main()\n")
_MAX_PROTOCOL_LINE = 4096


@dataclass(frozen=True)
class SandboxLimits:
    """What one child may use: address space, CPU seconds, and the size of the text it returns."""

    max_memory_bytes: int = 1024 * MB
    max_cpu_seconds: int = 300
    max_result_bytes: int = 128 * MB

    @property
    def idle_seconds(self) -> float:
        """Wall-clock time without any sign of progress after which the child is stopped (waiting costs no CPU)."""
        return 2.0 * self.max_cpu_seconds + 10


_CRASHES = {
    "memory": ("parse_out_of_memory",
               "This file makes the reader run out of memory: reading it needs more than {mb} MB. It probably "
               "contains a part that expands enormously when unpacked, or huge images. Save it again from its "
               "program or print it to a new PDF (or split it), and upload that."),
    "time": ("parse_timeout",
             "This file takes too long to read (more than {seconds} seconds of computing time). Split it into "
             "smaller files, or save it again from its program, and upload those."),
    "crash": ("parse_crashed",
              "The reader crashed on this file. Save it again from its program or print it to a new PDF, and "
              "upload that."),
}


class ParserCrashError(IngestError):
    """The child reading the file died: out of memory (``memory``), out of CPU time (``time``) or a crash."""

    def __init__(self, kind: str, limits: SandboxLimits) -> None:
        """Keep the kind; the message names the limit that was hit."""
        code, message = _CRASHES[kind]
        super().__init__(code, message.format(mb=limits.max_memory_bytes // MB, seconds=limits.max_cpu_seconds))
        self.kind = kind


def document_to_json(document: Document) -> dict[str, Any]:
    """A Document as plain JSON types."""
    return {"document_id": document.document_id, "title": document.title, "locator": document.locator.value,
            "media_type": document.media_type, "language": document.language, "metadata": document.metadata,
            "sections": [[s.text, s.position, list(s.heading_path), s.kind] for s in document.sections]}


def document_from_json(data: dict[str, Any]) -> Document:
    """The Document :func:`document_to_json` wrote."""
    sections = tuple(Section(text=t, position=p, heading_path=tuple(h), kind=k) for t, p, h, k in data["sections"])
    return Document(document_id=data["document_id"], title=data["title"], sections=sections,
                    locator=Locator(data["locator"]), media_type=data["media_type"], language=data["language"],
                    metadata=dict(data["metadata"]))


def _kill_group(pid: int) -> None:
    """Stop the child and anything it started (tesseract)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _crash_kind(status: int, cpu: float, stderr_tail: bytes, limits: SandboxLimits) -> str:
    """Why the child died, from its exit status, the CPU time it used, and its last words."""
    if status == EXIT_MEMORY:
        return "memory"
    if status == -signal.SIGXCPU or (status == -signal.SIGKILL and cpu >= limits.max_cpu_seconds):
        return "time"
    # SIGKILL without the CPU limit: the kernel's OOM killer. SIGABRT: C++ code (pdfium) whose allocation failed
    # under RLIMIT_AS aborts, silently. (ru_maxrss cannot tell: Linux carries the parent's peak across exec.)
    if status in (-signal.SIGKILL, -signal.SIGABRT):
        return "memory"
    words = stderr_tail.lower()
    return "memory" if b"bad_alloc" in words or b"out of memory" in words else "crash"


def _pump(proc: "subprocess.Popen[bytes]", limits: SandboxLimits, on_ocr_page: OcrProgress | None) -> bool:
    """Relay progress lines until the child closes its pipe; False when it went silent too long (killed)."""
    assert proc.stdout is not None
    buffer = b""
    deadline = time.monotonic() + limits.idle_seconds
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                _kill_group(proc.pid)
                return False
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return True
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > _MAX_PROTOCOL_LINE:
                _kill_group(proc.pid)
                raise RuntimeError("the parser child wrote an unexpected protocol line")
            for line in lines:
                parts = line.split()
                if len(parts) == 3 and parts[0] == b"progress":
                    deadline = time.monotonic() + limits.idle_seconds
                    if on_ocr_page is not None:
                        on_ocr_page(int(parts[1]), int(parts[2]))


def _reap(proc: "subprocess.Popen[bytes]", wait_seconds: float = 30.0) -> tuple[int, float]:
    """Wait for the child; returns (exit status as Popen reports it, CPU seconds)."""
    stop = time.monotonic() + wait_seconds
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > stop:  # closed its pipe but did not exit
            _kill_group(proc.pid)
            stop = time.monotonic() + wait_seconds
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _result(path: Path, limits: SandboxLimits) -> Document:
    """The child's answer: the Document, or the loader's typed error raised here."""
    if path.stat().st_size > limits.max_result_bytes:
        raise IngestError("too_much_text", f"This file contains more than {limits.max_result_bytes // MB} MB of "
                                           "text. Split it into smaller files and upload those.")
    answer = json.loads(path.read_bytes())
    if "document" in answer:
        return document_from_json(answer["document"])
    if "error" in answer:
        raise IngestError(answer["error"]["code"], answer["error"]["message"])
    raise RuntimeError(f"the parser failed unexpectedly: {answer.get('unexpected', '?')}")


def load_document_isolated(data: bytes, filename: str, media_type: str | None = None,
                           limits: LoadLimits | None = None, document_id: str | None = None,
                           on_ocr_page: OcrProgress | None = None, sandbox: SandboxLimits | None = None,
                           loader: str = DEFAULT_LOADER, env: Mapping[str, str] | None = None) -> Document:
    """:func:`retrieval.loaders.load_document` in a limited child process; a dying child raises ParserCrashError.

    ``loader`` (``"module:function"`` with load_document's signature) lets tests run a misbehaving parser; ``env``
    is the child's whole environment (None: this process's), so that a caller can keep its secrets from the parser.
    """
    sandbox = sandbox or SandboxLimits()
    with tempfile.TemporaryDirectory(prefix="coursebots-parse-") as tmp:
        source, result, errors = Path(tmp, "input"), Path(tmp, "result.json"), Path(tmp, "stderr")
        source.write_bytes(data)
        request = {"input": str(source), "result": str(result), "filename": filename, "media_type": media_type,
                   "limits": dataclasses.asdict(limits or LoadLimits()), "document_id": document_id,
                   "loader": loader, "memory": sandbox.max_memory_bytes, "cpu": sandbox.max_cpu_seconds}
        with open(errors, "wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-c", _CHILD_MAIN], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=stderr, cwd=_ROOT, close_fds=True,
                                    start_new_session=True, env=dict(env) if env is not None else None)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(request).encode("utf-8"))
            proc.stdin.close()
            answered = _pump(proc, sandbox, on_ocr_page)
        except BaseException:
            _kill_group(proc.pid)
            _reap(proc)
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        status, cpu = _reap(proc)
        _kill_group(proc.pid)  # a tesseract the child left behind
        if answered and status == 0 and result.exists():
            return _result(result, sandbox)
        kind = "time" if not answered else _crash_kind(status, cpu, errors.read_bytes()[-2000:], sandbox)
        log.warning("the parser child stopped (%s): exit status %s, %.1f s CPU", kind, status, cpu)
        raise ParserCrashError(kind, sandbox)


def _limit_self(memory: int, cpu: int) -> None:
    """Apply the OS limits to this process (and what it starts): no core files, address space, CPU seconds."""
    def cap(kind: int, soft: int, hard: int) -> None:
        _, current_hard = resource.getrlimit(kind)
        top = hard if current_hard == resource.RLIM_INFINITY else min(hard, current_hard)
        resource.setrlimit(kind, (min(soft, top), top))

    cap(resource.RLIMIT_CORE, 0, 0)
    cap(resource.RLIMIT_AS, memory, memory)
    cap(resource.RLIMIT_CPU, cpu, cpu + 5)  # SIGXCPU at the soft limit, SIGKILL 5 s later


def _caused_by_memory(exc: BaseException) -> bool:
    """Whether an exception (a loader turns any failure into 'damaged') stems from a MemoryError."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _child(channel: IO[str]) -> None:
    """The child's work: limits first, then parse, then the JSON answer."""
    request = json.loads(sys.stdin.read())
    _limit_self(int(request["memory"]), int(request["cpu"]))
    module_name, _, function_name = str(request["loader"]).partition(":")
    load: Callable[..., Document] = getattr(importlib.import_module(module_name), function_name)

    def progress(done: int, total: int) -> None:
        channel.write(f"progress {done} {total}\n")
        channel.flush()

    answer: dict[str, Any]
    try:
        data = Path(request["input"]).read_bytes()
        document = load(data, request["filename"], request["media_type"], LoadLimits(**request["limits"]),
                        document_id=request["document_id"], on_ocr_page=progress)
        del data
        answer = {"document": document_to_json(document)}
    except MemoryError:
        os._exit(EXIT_MEMORY)
    except IngestError as exc:
        if _caused_by_memory(exc):
            os._exit(EXIT_MEMORY)
        answer = {"error": {"code": exc.code, "message": exc.message}}
    except Exception as exc:  # a bug, not the file's fault: the parent reports an internal error
        log.exception("parser failed")
        answer = {"unexpected": type(exc).__name__}
    Path(request["result"]).write_text(json.dumps(answer), encoding="utf-8")


def main() -> None:
    """The child's entry point (stdout carries the protocol, nothing else)."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # a library that prints must not corrupt the protocol
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        _child(channel)
    except MemoryError:
        os._exit(EXIT_MEMORY)
    channel.close()
