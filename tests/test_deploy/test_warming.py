"""COURSEBOTS_WARM_ON_START: a starting worker loads the embedding model and the recently used courses' indexes."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade

from course_bots import backends
from course_bots.materials import course_index
from course_bots.materials.course_index import get_cache
from course_bots.models import CourseBot
from lti_tool import create_app
from lti_tool.app import warm_worker
from lti_tool.extensions import current_config, db, utcnow
from tests.conftest import make_config


def test_warming_builds_the_most_recently_used_courses_first(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path, warm_on_start=True, warm_courses=2))
    with app.app_context():
        upgrade()
        now = utcnow()
        bots = [CourseBot(issuer="https://moodle.example.edu", deployment_id="1", context_id=f"c{i}",
                          last_used_at=now - timedelta(days=i)) for i in range(3)]
        db.session.add_all(bots)
        db.session.commit()
        ids = [bot.id for bot in bots]
    assert warm_worker(app) == 2
    cache = get_cache(app)
    assert ids[0] in cache and ids[1] in cache and ids[2] not in cache  # the oldest course waits for its question


def test_no_warming_unless_configured(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path))
    assert warm_worker(app) == 0


def test_warming_builds_the_model_server_clients_without_calling_them(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing answers there, and warming must not need it to.
    app = create_app(make_config(tmp_path, warm_on_start=True, llm_backend="openai", llm_model="warm-test",
                                 llm_base_url="http://127.0.0.1:9/v1"))
    with app.app_context():
        upgrade()
        entry = backends.default_entry(current_config())
    backends._cache.pop((entry.backend, ",".join(entry.urls), entry.model), None)
    warm_worker(app)
    with app.app_context():
        before = len(backends._cache)
        assert backends.backend_for(entry) is backends.backend_for(entry)  # built by warming, reused
        assert len(backends._cache) == before
    assert (entry.backend, ",".join(entry.urls), entry.model) in backends._cache


def test_a_warmed_worker_does_not_tell_its_first_student_that_it_gets_ready(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(course_index, "_search_ready", False)  # a fresh process
    app = create_app(make_config(tmp_path, warm_on_start=True))
    with app.app_context():
        upgrade()
    assert not course_index.search_ready()
    warm_worker(app)
    assert course_index.search_ready(), "the chat's 'getting ready' notice is for cold workers only"
