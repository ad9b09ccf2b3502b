"""Warming a starting web worker: the embedding model, the model servers' clients and the indexes of the most
recently used courses.

``wsgi.py`` calls the app's ``coursebots.warm`` hook when ``COURSEBOTS_WARM_ON_START`` is set, so the first
students after a deploy or a worker restart do not wait for a model load or an index build.
"""
from __future__ import annotations

import logging
import time

from flask import Flask
from sqlalchemy import select

from course_bots.backends import warm_backends
from course_bots.models import CourseBot
from course_bots.materials.course_index import get_cache, get_embedder, get_reranker, mark_search_ready
from lti_tool.extensions import db

logger = logging.getLogger(__name__)


def warm(app: Flask, courses: int) -> int:
    """Load the embedding model and build the indexes of up to ``courses`` recently used courses; how many built."""
    started = time.perf_counter()
    built = clients = 0
    with app.app_context():
        try:
            config = app.extensions["coursebots.config"]
            embedder = get_embedder(app)
            embedder.embed_queries(["warm up"])  # loads the engine (weights, threads) now
            clients = warm_backends(config)  # the OpenAI client library and its pools, not on a first question
            cache = get_cache(app)
            recent = db.session.scalars(select(CourseBot.id).order_by(CourseBot.last_used_at.desc())
                                        .limit(max(0, courses))).all()
            for bot_id in recent:
                cache.get(bot_id, embedder, get_reranker(config))
                built += 1
            mark_search_ready()  # a warmed worker's first student is not told that the assistant is getting ready
        except Exception:  # a cold worker still serves; never fail the start over warming
            logger.exception("warming the worker failed")
        finally:
            db.session.remove()
    logger.info("warmed the worker: embedding model, %d model server clients and %d course indexes in %.1f s",
                clients, built, time.perf_counter() - started)
    return built
