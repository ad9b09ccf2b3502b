"""The application factory: configuration, extensions, blueprints, error pages, security headers and CLI."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask.json.provider import DefaultJSONProvider
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from lti_tool import health, logging_json, metrics, models, ratelimit, security, views  # noqa: F401  (models: tables)
from lti_tool.cli import lti_cli
from lti_tool.config import Config
from lti_tool.extensions import db, migrate
from lti_tool.registration import registration_bp
from lti_tool.tool_config import list_registrations

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
logger = logging.getLogger(__name__)
DATABASE_RETRY_AFTER_S = 5  # a restarting PostgreSQL answers again within seconds; the pool then reconnects
ID_MAX = 2 ** 31 - 1  # the largest id the database holds: ids are INTEGER columns (int4 on PostgreSQL)


class IdConverter(IntegerConverter):
    """``<int:...>`` in routes: a non-negative id up to 2^31-1 (a larger one does not match: 404, never a 500)."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = ID_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=ID_MAX if max is None else max,
                         signed=signed)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested too deeply to parse is invalid JSON (400), not a crash."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON; RecursionError becomes ValueError like any other malformed body."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def create_app(config: Config | None = None) -> Flask:
    """Build the CourseBots Flask app; ``config`` defaults to :meth:`Config.from_env`."""
    app = Flask(__name__, instance_relative_config=True)
    app.json = JSONProvider(app)
    app.url_map.converters["int"] = IdConverter  # before any blueprint adds its rules
    if config is None:
        config = Config.from_env(instance_path=app.instance_path)
    elif not config.instance_path:
        config = config.resolved(app.instance_path)
    app.instance_path = config.instance_path
    Path(config.instance_path).mkdir(parents=True, exist_ok=True)
    _configure_logging(config)
    app.config.update(
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        SQLALCHEMY_DATABASE_URI=config.database_url,
        # Each worker thread holds a connection only while it reads or writes (a streaming answer holds none).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "pool_size": config.db_pool_size,
                                   "max_overflow": config.db_pool_size, "pool_timeout": config.db_pool_timeout}
        if not config.is_sqlite else {},
        MAX_CONTENT_LENGTH=None,
        JSON_SORT_KEYS=False,
    )
    app.extensions["coursebots.config"] = config
    if config.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops,  # type: ignore
                                x_host=config.proxy_hops, x_port=config.proxy_hops, x_prefix=config.proxy_hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    if config.is_sqlite:
        _enable_sqlite_foreign_keys(app)

    app.register_blueprint(views.bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(health.bp)
    app.cli.add_command(lti_cli)
    security.init_app(app)
    ratelimit.init_app(app)
    logging_json.init_app(app)  # request ids and the access line
    metrics.init_app(app)  # requests and latency per endpoint
    _register_error_handlers(app)

    # What the product may read of the protocol's records (it never imports lti_tool.models).
    app.extensions["coursebots.registrations"] = list_registrations
    # Commands that need a fresh app (an evaluation in a throw-away database) take the factory from here, so the
    # product never imports the shell's app module (that would close an import cycle).
    app.extensions["coursebots.app_factory"] = create_app
    # The product plugs in last: lti_tool imports course_bots only here (the dependency rule).
    import course_bots.models  # noqa: F401  (tables known to migrations)
    from course_bots import plugin

    plugin.init_app(app)
    return app


def warm_worker(app: Flask) -> int:
    """Warm a starting web worker when ``COURSEBOTS_WARM_ON_START`` is set; the number of course indexes built."""
    config: Config = app.extensions["coursebots.config"]
    warm = app.extensions.get("coursebots.warm")
    if not config.warm_on_start or warm is None:
        return 0
    return int(warm(config.warm_courses))


def _configure_logging(config: Config) -> None:
    logging_json.configure(config.log_format, config.log_level)


def _enable_sqlite_foreign_keys(app: Flask) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    with app.app_context():
        engine: Engine = db.engine

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
        code = getattr(exc, "api_code", None) or ("too_large" if exc.code == 413 else None) \
            or (exc.name or "error").lower().replace(" ", "_")
        if request.path.startswith("/api/"):
            response = jsonify({"error": {"code": code, "message": exc.description or exc.name}})
            return response, exc.code or 500
        return render_template("lti/error.html", code=code, message=exc.description or exc.name), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response | str, int] | Response:
        if database_unavailable(exc):
            return _database_unavailable(exc)
        # Log the type and where, never request data (it may carry personal data).
        logger.exception("unhandled %s on %s %s", type(exc).__name__, request.method, request.url_rule)
        db.session.rollback()
        message = "Something went wrong on our side. Please try again."
        if request.path.startswith("/api/"):
            return jsonify({"error": {"code": "internal_error", "message": message}}), 500
        return render_template("lti/error.html", code="internal_error", message=message), 500


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) means the database cannot be used right now.

    A lost or refused connection (PostgreSQL restarting, a backend terminated), an operational failure (a locked
    SQLite file, a cancelled statement) or a pool with no free connection in time: the same request succeeds later.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain: raise ... from ... inside a service
        if seen is None:
            return False
        if isinstance(seen, PoolTimeoutError) or isinstance(seen, OperationalError) or (
                isinstance(seen, DBAPIError) and seen.connection_invalidated):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _database_unavailable(exc: Exception) -> Response:
    """503 with ``Retry-After`` (the API's error shape, or the error page); the session rolled back."""
    original = getattr(exc, "orig", None)
    # The type names only: the exception's text quotes the statement and its parameters (personal data).
    logger.warning("database unavailable on %s %s: %s (%s)", request.method, request.url_rule, type(exc).__name__,
                   type(original).__name__ if original is not None else "-")
    try:
        db.session.rollback()  # a dead connection is discarded here; the pool opens a fresh one next time
    except Exception as rollback_error:  # the connection is gone either way: the pool replaces it
        logger.warning("rollback after a lost database connection failed: %s", type(rollback_error).__name__)
    message = "The database is not reachable right now. Please try again in a few seconds."
    if request.path.startswith("/api/"):
        response = jsonify({"error": {"code": "database_unavailable", "message": message}})
    else:
        response = make_response(render_template("lti/error.html", code="database_unavailable", message=message))
    response.status_code = 503
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response
