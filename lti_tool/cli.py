"""``flask --app lti_tool lti ...``: registration, keys and the tool's URLs for administrators."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from sqlalchemy import select

from lti_tool.extensions import current_config, db
from lti_tool.keys import rotate_keys
from lti_tool.models import Deployment, Platform
from lti_tool.security import forget_platform_origins
from lti_tool.tool_config import list_registrations

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


@lti_cli.command("platform-add")
@click.option("--issuer", required=True, help="Platform ID (Moodle: the site URL, no trailing slash).")
@click.option("--client-id", required=True, help="Client ID the platform generated for CourseBots.")
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True,
              help="Deployment ID (Moodle: the tool's id); repeat for several.")
@click.option("--auth-url", required=True, help="Authentication request URL (Moodle: /mod/lti/auth.php).")
@click.option("--token-url", required=True, help="Access token URL (Moodle: /mod/lti/token.php).")
@click.option("--jwks-url", required=True, help="Public keyset URL (Moodle: /mod/lti/certs.php).")
@click.option("--name", default="", help="A label for administrators.")
def platform_add(issuer: str, client_id: str, deployment_ids: tuple[str, ...], auth_url: str, token_url: str,
                 jwks_url: str, name: str) -> None:
    """Register a platform (or update it) and add deployments to it."""
    # Stored exactly as given: the launch's `iss` must match it character for character.
    platform = db.session.scalars(select(Platform).where(
        Platform.issuer == issuer, Platform.client_id == client_id)).first()
    created = platform is None
    if platform is None:
        platform = Platform(issuer=issuer, client_id=client_id, registered_via="manual")
        db.session.add(platform)
    platform.auth_login_url, platform.auth_token_url = auth_url, token_url
    if platform.key_set_url != jwks_url:
        platform.key_set, platform.key_set_fetched_at = None, None  # a new key set URL: forget the cache
    platform.key_set_url = jwks_url
    platform.name = name or platform.name or issuer
    known = {d.deployment_id for d in platform.deployments}
    for deployment_id in deployment_ids:
        if deployment_id not in known:
            platform.deployments.append(Deployment(deployment_id=deployment_id))
    db.session.commit()
    forget_platform_origins()
    click.echo(f"{'Registered' if created else 'Updated'} platform {platform.id}: {issuer} client {client_id}, "
               f"deployments {', '.join(d.deployment_id for d in platform.deployments)}")


@lti_cli.command("platform-list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def platform_list(as_json: bool) -> None:
    """List registered platforms with their client ids and deployments."""
    rows = [{**row, "deployments": [d["deployment_id"] for d in row["deployments"]]}
            for row in list_registrations()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No platforms registered. Add one with: flask --app lti_tool lti platform-add --help")
    for row in rows:
        click.echo(f"{row['id']:>4}  {row['issuer']}  client {row['client_id']}  "
                   f"deployments {','.join(row['deployments']) or '-'}  ({row['registered_via']})")


@lti_cli.command("platform-remove")
@click.option("--issuer", required=True, help="Platform ID of the registration.")
@click.option("--client-id", default=None, help="Client ID (needed when the issuer has several).")
@click.option("--deployment-id", default=None, help="Remove only this deployment, keep the registration.")
def platform_remove(issuer: str, client_id: str | None, deployment_id: str | None) -> None:
    """Remove a platform registration (or one of its deployments); its launches are refused from then on."""
    query = select(Platform).where(Platform.issuer == issuer)
    if client_id:
        query = query.where(Platform.client_id == client_id)
    platforms = db.session.scalars(query).all()
    if not platforms:
        suffix = f" client {client_id}" if client_id else ""
        raise click.ClickException(f"no platform registered for {issuer}{suffix}")
    if len(platforms) > 1:
        raise click.ClickException(f"{issuer} has {len(platforms)} client ids: pass --client-id")
    platform = platforms[0]
    if deployment_id:
        matches = [d for d in platform.deployments if d.deployment_id == deployment_id]
        if not matches:
            raise click.ClickException(f"deployment {deployment_id} is not registered under {issuer}")
        platform.deployments.remove(matches[0])
        db.session.commit()
        click.echo(f"Removed deployment {deployment_id} of {issuer}")
        return
    db.session.delete(platform)
    db.session.commit()
    forget_platform_origins()
    click.echo(f"Removed platform {issuer} client {platform.client_id}")


@lti_cli.command("rotate-keys")
def rotate_keys_command() -> None:
    """Start signing with a new key; the old public key stays in the JWKS for COURSEBOTS_KEY_RETIRE_HOURS."""
    new, retired = rotate_keys()
    click.echo(f"New signing key {new.kid}.")
    for key in retired:
        until = key.unpublish_at.isoformat() if key.unpublish_at else "-"
        click.echo(f"Retired {key.kid}: still published until {until}.")
