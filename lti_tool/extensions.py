"""Flask extensions shared by the app shell and the product: the database and migrations."""
from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData
from sqlalchemy.types import TypeDecorator
from sqlalchemy.orm import DeclarativeBase

from lti_tool.config import Config

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention, so migrations name things predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our column types as plain SQLAlchemy types, so migrations never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True, render_item=_render_item)


def utcnow() -> datetime:
    """Timezone-aware current UTC time (every ``*_at`` column stores UTC)."""
    return datetime.now(timezone.utc)


def current_config() -> Config:
    """The :class:`Config` of the running app."""
    config: Config = current_app.extensions["coursebots.config"]
    return config


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime stored as UTC and always returned timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Normalise to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use utcnow()")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Attach UTC to values SQLite returns naive."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def on_first_request_of_each_process(app: Flask, start: Callable[[], object]) -> None:
    """Call ``start`` once in each process, on its first request (forked workers each once; later requests pay a
    dict lookup). For background threads, which must not be started before a WSGI server forks its workers."""
    started: dict[str, int] = {}
    lock = threading.Lock()

    @app.before_request
    def _start_once() -> None:
        if started.get("pid") == os.getpid():
            return
        with lock:
            if started.get("pid") == os.getpid():
                return
            started["pid"] = os.getpid()
        start()
