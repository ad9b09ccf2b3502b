"""``flask --app lti_tool lti ...``: registration, keys and the tool's URLs for administrators."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from lti_tool.extensions import current_config

lti_cli = AppGroup("lti", help="Register platforms, rotate keys, show the tool's LTI URLs.")


def tool_urls() -> dict[str, str]:
    """The URLs an administrator enters in the LMS, from COURSEBOTS_BASE_URL."""
    config = current_config()
    return {
        "login_url": config.url("/lti/login"),
        "launch_url": config.url("/lti/launch"),
        "jwks_url": config.url("/lti/jwks"),
        "registration_url": config.url("/lti/register"),
        "deep_link_url": config.url("/lti/launch"),
        "domain": config.base_host,
    }


@lti_cli.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(as_json: bool) -> None:
    """Print the tool's login, launch, JWKS, registration and deep-linking URLs."""
    urls = tool_urls()
    if as_json:
        click.echo(json.dumps(urls, indent=2))
        return
    for key, value in urls.items():
        click.echo(f"{key:18} {value}")
