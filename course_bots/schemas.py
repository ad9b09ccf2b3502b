"""The JSON API's request bodies and query numbers, defined once: the views validate with these models and a test
checks that ``docs/openapi.yaml`` describes exactly them (so documentation and validation cannot drift).

Integers are bounded to what the database stores, booleans are not integers, texts have a maximum length and never
contain NUL characters (PostgreSQL refuses them). A refusal is a 400 in the API's error shape.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import BadRequest

INT_MAX = 2 ** 31 - 1  # INTEGER columns (int4 on PostgreSQL), ids included
ID_MAX = INT_MAX  # as the route converters: a larger id cannot exist
DAYS_MAX = 36500  # retention: a century is "keep"; 0 means never
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_INTEGER = re.compile(r"-?[0-9]{1,19}")


class InvalidRequest(BadRequest):
    """A 400 whose ``api_code`` the app's error handler puts into ``{"error": {"code", "message"}}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(description=message)
        self.api_code = code


class RequestBody(BaseModel):
    """A JSON object body: strict types, unknown keys ignored; ``error_code`` names refusals, per field if listed."""

    model_config = ConfigDict(strict=True, extra="ignore")
    error_code: ClassVar[str] = "invalid_request"
    field_codes: ClassVar[dict[str, str]] = {}
    hint: ClassVar[str] = ""


class ConsentAnswer(RequestBody):
    """``POST /consent``: acceptance or refusal of the notice version shown."""

    hint: ClassVar[str] = 'Send {"accepted": true|false, "version": <notice version>}.'
    accepted: bool
    version: int = Field(ge=0, le=INT_MAX)


class ChatQuestion(RequestBody):
    """``POST /bots/{bot_id}/chat``: a question, the page's id for it, and the conversation (null: a new one)."""

    field_codes: ClassVar[dict[str, str]] = {"question": "invalid_question", "client_id": "invalid_client_id",
                                             "conversation_id": "invalid_conversation"}
    question: str = Field(min_length=1, max_length=4000)
    client_id: str = Field(pattern=CLIENT_ID_PATTERN)
    conversation_id: int | None = Field(default=None, ge=1, le=ID_MAX)


class FeedbackBody(RequestBody):
    """``POST /bots/{bot_id}/messages/{message_id}/feedback``: thumbs up/down and an optional comment."""

    error_code: ClassVar[str] = "invalid_feedback"
    value: Literal["up", "down"]
    comment: str = Field(default="", max_length=4000)


class SettingsChange(RequestBody):
    """``PUT /bots/{bot_id}/settings``: a partial change; only the fields sent are changed (the defaults are unused)."""

    error_code: ClassVar[str] = "invalid_setting"
    name: str = Field(default="", max_length=120)
    welcome_message: str = Field(default="", max_length=2000)
    system_prompt: str = Field(default="", max_length=8000)
    answer_language: Literal["auto", "de", "en"] = "auto"
    teaching_mode: Literal["tutor", "faq", "exam", "custom"] = "tutor"
    temperature: float = Field(default=0.2, ge=0, le=1.5)
    max_answer_tokens: int = Field(default=512, ge=64, le=4096)
    model_key: str = Field(default="", max_length=120)
    uncovered_behaviour: Literal["refuse", "refuse_suggest_teacher"] = "refuse"
    paused: bool = False
    pause_message: str = Field(default="", max_length=1000)


class CopyFrom(RequestBody):
    """``POST /bots/{bot_id}/copy-from``: the one-time code issued for the source bot."""

    error_code: ClassVar[str] = "invalid_copy_code"
    code: str = Field(max_length=64)


class DeleteBot(RequestBody):
    """``DELETE /bots/{bot_id}``: the explicit confirmation."""

    error_code: ClassVar[str] = "confirmation_required"
    hint: ClassVar[str] = 'Send {"confirm": "delete"} to delete the bot.'
    confirm: Literal["delete"]


class MaterialChange(RequestBody):
    """``PATCH /bots/{bot_id}/materials/{material_id}``: whether students may open the original file."""

    hint: ClassVar[str] = 'Send {"students_may_open": true|false}.'
    students_may_open: bool


class PageEdit(RequestBody):
    """``PUT /bots/{bot_id}/materials/{material_id}/pages/{number}``: exclude, replace or restore a page."""

    error_code: ClassVar[str] = "invalid_page_edit"
    hint: ClassVar[str] = 'Send {"excluded": true|false, "replacement": "<the page\'s text>"|null}.'
    excluded: bool = False
    replacement: str | None = Field(default=None, max_length=20000)


class PreviousEditDecision(RequestBody):
    """``PATCH /bots/{bot_id}/materials/{material_id}/pages/{number}``: keep or drop an earlier version's edit."""

    hint: ClassVar[str] = 'Send {"keep": true|false}.'
    keep: bool


class FaqBody(RequestBody):
    """``POST /bots/{bot_id}/faq`` and ``PUT|PATCH /bots/{bot_id}/faq/{faq_id}``: the question and the answer."""

    error_code: ClassVar[str] = "invalid_faq"
    question: str = Field(max_length=2000)
    answer: str = Field(max_length=20000)


class TestQuestionBody(RequestBody):
    """``POST /bots/{bot_id}/test-questions``: a question, the file (and page) that should answer it, its source."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    error_code: ClassVar[str] = "invalid_test_question"
    question: str = Field(min_length=1, max_length=2000)
    expected_file: str = Field(min_length=1, max_length=255)
    expected_page: int | None = Field(default=None, ge=1, le=100000)
    source: Literal["teacher", "student_log"] = "teacher"


class RetentionBody(RequestBody):
    """``PUT /bots/{bot_id}/retention`` and ``PUT /admin/retention``: days until anonymization and deletion."""

    hint: ClassVar[str] = 'Send {"anonymize_days": N, "delete_days": M} (0 = never).'
    anonymize_days: int = Field(ge=0, le=DAYS_MAX)
    delete_days: int = Field(ge=0, le=DAYS_MAX)


class QuotaRule(RequestBody):
    """``PUT /admin/quotas``: a platform's limits for one role, or its daily budget (role ``platform``).

    Only the fields sent change; null returns a field to the configured default; 0 means no limit.
    """

    error_code: ClassVar[str] = "invalid_quota"
    role: Literal["learner", "teacher", "platform"]
    questions_per_day: int | None = Field(default=None, ge=0, le=INT_MAX)
    tokens_per_day: int | None = Field(default=None, ge=0, le=INT_MAX)
    burst_per_minute: int | None = Field(default=None, ge=0, le=INT_MAX)


class QuotaOverride(RequestBody):
    """``PUT /bots/{bot_id}/quota/overrides``: a teacher's tighter limits for one role (null removes one)."""

    error_code: ClassVar[str] = "invalid_quota"
    role: Literal["learner", "teacher"]
    questions_per_day: int | None = Field(default=None, ge=1, le=INT_MAX)
    tokens_per_day: int | None = Field(default=None, ge=1, le=INT_MAX)
    burst_per_minute: int | None = Field(default=None, ge=1, le=INT_MAX)


# (path under /api/v1 as in docs/openapi.yaml, method) -> its body; the OpenAPI test checks the document against this.
REQUEST_BODIES: dict[tuple[str, str], type[RequestBody]] = {
    ("/consent", "post"): ConsentAnswer,
    ("/bots/{bot_id}/chat", "post"): ChatQuestion,
    ("/bots/{bot_id}/messages/{message_id}/feedback", "post"): FeedbackBody,
    ("/bots/{bot_id}/settings", "put"): SettingsChange,
    ("/bots/{bot_id}/copy-from", "post"): CopyFrom,
    ("/bots/{bot_id}", "delete"): DeleteBot,
    ("/bots/{bot_id}/materials/{material_id}", "patch"): MaterialChange,
    ("/bots/{bot_id}/materials/{material_id}/pages/{number}", "put"): PageEdit,
    ("/bots/{bot_id}/materials/{material_id}/pages/{number}", "patch"): PreviousEditDecision,
    ("/bots/{bot_id}/faq", "post"): FaqBody,
    ("/bots/{bot_id}/faq/{faq_id}", "put"): FaqBody,
    ("/bots/{bot_id}/faq/{faq_id}", "patch"): FaqBody,
    ("/bots/{bot_id}/retention", "put"): RetentionBody,
    ("/bots/{bot_id}/test-questions", "post"): TestQuestionBody,
    ("/admin/retention", "put"): RetentionBody,
    ("/admin/quotas", "put"): QuotaRule,
    ("/bots/{bot_id}/quota/overrides", "put"): QuotaOverride,
}

B = TypeVar("B", bound=RequestBody)


def parse_body(model: type[B]) -> B:
    """The request's JSON object validated into ``model``, or :class:`InvalidRequest` (400)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequest(model.error_code, f"{model.hint} A JSON object is expected.".strip())
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        code = model.field_codes.get(str(error["loc"][0]) if error["loc"] else "", model.error_code)
        raise InvalidRequest(code, f"{model.hint} {field}: {error['msg']}.".strip()) from None
    for name, value in body.model_dump().items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidRequest(model.field_codes.get(name, model.error_code), f"{name} contains a NUL character.")
    return body


def query_int(name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high] (``default`` when absent), or :class:`InvalidRequest`."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidRequest("invalid_request", f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


def query_choice(name: str, choices: tuple[str, ...]) -> str | None:
    """A query parameter that is one of ``choices`` (None when absent), or :class:`InvalidRequest`."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise InvalidRequest("invalid_request", f"{name} must be one of {', '.join(choices)}.")
    return raw


def openapi_schema(model: type[RequestBody]) -> dict[str, Any]:
    """The model's JSON Schema in the compact form docs/openapi.yaml writes (no titles or defaults)."""
    def compact(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: compact(v) for k, v in node.items() if k not in ("title", "default", "description")}
        if isinstance(node, list):
            return [compact(v) for v in node]
        return node

    return dict(compact(model.model_json_schema()))
