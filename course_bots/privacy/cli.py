"""``flask --app lti_tool privacy ...``: retention purge, an admin's export/erase of one LTI user, settings.

Output is JSON on stdout; logs carry counts only, never content or user ids.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from course_bots.privacy import consent, operations as privacy_ops
from lti_tool.extensions import db

logger = logging.getLogger(__name__)
privacy_cli = AppGroup("privacy", help="Retention, data-subject requests and consent texts.")


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@privacy_cli.command("purge")
def purge_command() -> None:
    """Apply retention now: drop pseudonyms, delete old conversations and inactive bots."""
    counts = privacy_ops.purge()
    db.session.commit()
    _emit(counts)


@privacy_cli.command("export")
@click.option("--issuer", required=True, help="The platform's issuer (Platform ID in Moodle).")
@click.option("--user", "user_id", required=True, help="The LTI user id (`sub`; Moodle: the user's id).")
def export_command(issuer: str, user_id: str) -> None:
    """Everything stored about one LTI user on one platform, as JSON (pseudonyms recomputed per course)."""
    data = privacy_ops.export_user(issuer, user_id)
    db.session.commit()  # the audit event
    _emit(data)


@privacy_cli.command("erase")
@click.option("--issuer", required=True, help="The platform's issuer (Platform ID in Moodle).")
@click.option("--user", "user_id", required=True, help="The LTI user id (`sub`; Moodle: the user's id).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(issuer: str, user_id: str, yes: bool) -> None:
    """Erase everything of one LTI user on one platform; prints what was deleted as JSON."""
    if not yes and not click.confirm("Erase all chat data of this user on this platform?", err=True):
        raise click.Abort()
    counts = privacy_ops.erase_user(issuer, user_id)
    db.session.commit()
    _emit(counts)


@privacy_cli.command("retention-set")
@click.option("--issuer", required=True, help="The platform's issuer.")
@click.option("--bot", "bot_id", type=int, default=None, help="A bot id: an override that may only be stricter.")
@click.option("--anonymize-days", type=click.IntRange(min=0), required=True, help="Drop pseudonyms after; 0 never.")
@click.option("--delete-days", type=click.IntRange(min=0), required=True, help="Delete conversations after; 0 never.")
def retention_set_command(issuer: str, bot_id: int | None, anonymize_days: int, delete_days: int) -> None:
    """Set a platform's retention, or a stricter one for one bot."""
    try:
        privacy_ops.set_retention(issuer, anonymize_days, delete_days, bot_id=bot_id)
    except ValueError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    effective = privacy_ops.effective_retention(bot_id) if bot_id else privacy_ops.platform_retention(issuer)
    db.session.commit()
    _emit({"issuer": issuer, "bot_id": bot_id, "anonymize_days": effective.anonymize_days,
           "delete_days": effective.delete_days})


@privacy_cli.command("consent-set")
@click.option("--issuer", default="", help="The platform's issuer; empty for all platforms without their own.")
@click.option("--lang", "language", required=True, help="Language code, e.g. de or en.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="UTF-8 text file with the notice ({anonymize_days}, {delete_days}, {min_students}, {model}).")
def consent_set_command(issuer: str, language: str, path: Path) -> None:
    """Publish a new version of a consent notice; participants are asked again."""
    try:
        notice = consent.set_notice(issuer, language, path.read_text(encoding="utf-8"))
    except consent.ConsentError as exc:
        raise click.ClickException(exc.message) from exc
    privacy_ops.audit("consent_notice_changed", issuer=issuer, actor_role="admin_cli", target_type="consent_notice",
                      target_id=notice.id, details={"language": notice.language, "version": notice.version})
    db.session.commit()
    _emit({"issuer": issuer, "language": notice.language, "version": notice.version})
