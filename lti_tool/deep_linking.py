"""Deep Linking: answer an ``LtiDeepLinkingRequest`` with one resource link to the course's bot.

The signed ``LtiDeepLinkingResponse`` (pylti1p3's message, our signing key and ``kid``) is auto-posted to the
platform's ``deep_link_return_url`` by a page whose only script carries the response's CSP nonce.
"""
from __future__ import annotations

import logging
from typing import Any

import jwt
from flask import Response, make_response, render_template
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource

from lti_tool.context import LaunchContext
from lti_tool.extensions import current_config, db
from lti_tool.keys import signing_key
from lti_tool.models import Platform
from lti_tool.security import allow_framing_by
from lti_tool.tool_config import registration_for

logger = logging.getLogger(__name__)


def resource_for(ctx: LaunchContext) -> DeepLinkResource:
    """The one content item CourseBots offers: a resource link to the course bot, titled from the course."""
    config = current_config()
    title = f"{config.tool_name}: {ctx.context_title}" if ctx.context_title else config.tool_name
    return DeepLinkResource().set_type("ltiResourceLink").set_title(title).set_url(config.url("/lti/launch"))


def response_jwt(ctx: LaunchContext) -> str:
    """The signed LtiDeepLinkingResponse JWT for a validated deep-linking launch."""
    platform = db.session.get(Platform, ctx.platform_id)
    if platform is None:
        raise LookupError("the platform of a validated launch disappeared")
    key = signing_key()
    settings: Any = ctx.deep_link_settings
    deep_link = DeepLink(registration_for(platform), ctx.deployment_id, settings)
    message: dict[str, Any] = deep_link.get_message_jwt([resource_for(ctx)])
    if message.get("https://purl.imsglobal.org/spec/lti-dl/claim/data") is None:
        # Only echo `data` when the platform sent some (a null claim confuses some platforms).
        message.pop("https://purl.imsglobal.org/spec/lti-dl/claim/data", None)
    return jwt.encode(message, key.private_key_pem, algorithm="RS256", headers={"kid": key.kid})


def respond(ctx: LaunchContext) -> Response:
    """The auto-posting page that returns the deep-linking response to the platform."""
    token = response_jwt(ctx)
    platform = db.session.get(Platform, ctx.platform_id)
    if platform is not None:
        allow_framing_by(platform.origin)
    logger.info("deep-linking response issuer=%s deployment=%s", ctx.issuer, ctx.deployment_id)
    return make_response(render_template("lti/deep_link_response.html", return_url=ctx.deep_link_settings[
        "deep_link_return_url"], jwt=token))
