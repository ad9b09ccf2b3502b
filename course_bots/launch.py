"""What a validated launch shows: the course's bot is found or created and the role's page is rendered."""
from __future__ import annotations

import logging

from flask import Response, make_response, render_template

from course_bots.privacy_rules import anonymous_pseudonym, pseudonym
from course_bots.bots import get_or_create_bot
from lti_tool.context import LaunchContext, issue_token, new_session
from lti_tool.extensions import current_config, db

logger = logging.getLogger(__name__)

SUPPORTED_LOCALES = ("de", "en")


def page_locale(locale: str | None) -> str:
    """The UI language for a launch locale such as ``de-DE`` or ``en_US`` (English otherwise)."""
    lang = (locale or "en").replace("_", "-").split("-")[0].lower()
    return lang if lang in SUPPORTED_LOCALES else "en"


def handle_launch(launch: LaunchContext) -> Response:
    """Create the course bot on first launch, issue the page's session token and render the role's page."""
    config = current_config()
    bot, created = get_or_create_bot(launch.issuer, launch.deployment_id, launch.context_id, launch.context_title)
    if launch.user_sub:
        user_pseudonym = pseudonym(config.pseudonym_key, launch.issuer, launch.user_sub, bot.id)
    else:
        user_pseudonym = anonymous_pseudonym()
    claims = new_session(launch, bot.id, user_pseudonym)
    db.session.commit()
    if created:
        logger.info("course bot %s created for deployment %s", bot.id, launch.deployment_id)
    page = "teacher" if claims.is_teacher else "student"
    html = render_template(f"course_bots/{page}.html", bot=bot, page=page, lang=page_locale(launch.locale),
                           token=issue_token(config.secret_key, claims), expires_at=claims.expires_at,
                           role=claims.primary_role.value)
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response
