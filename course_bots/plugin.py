"""Plugs the product into the app shell: it lists the features, and each registers itself."""
from __future__ import annotations

from flask import Flask

from course_bots import pages
from course_bots.admin import feature as admin
from course_bots.chat import feature as chat
from course_bots.evaluation import feature as evaluation
from course_bots.materials import feature as materials
from course_bots.privacy import feature as privacy
from course_bots.quotas import feature as quotas
from course_bots.settings import feature as settings

FEATURES = (pages, settings, privacy, materials, chat, evaluation, admin, quotas)


def init_app(app: Flask) -> None:
    """Register every feature (blueprints, CLI groups, hooks) on the app."""
    for feature in FEATURES:
        feature.init_app(app)
