"""The tool's root address: the admin landing page (health, version, registration values), no personal data."""
from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from course_bots import i18n
from course_bots.pages import manual_values, version
from lti_tool.extensions import current_config


def test_root_is_the_landing_page_in_the_browsers_language(app: Flask, client: FlaskClient) -> None:
    german = client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert german.status_code == 200 and german.mimetype == "text/html"
    html = german.get_data(as_text=True)
    assert '<html lang="de">' in html and i18n.text("landing_title", "de") in html
    with app.app_context():
        config = current_config()
        for path in ("/lti/register", "/lti/launch", "/lti/login", "/lti/jwks"):
            assert config.url(path) in html
    assert 'data-ready="ready"' in html and f'id="landing-version">{version()}<' in html
    assert "Show in activity chooser and as a preconfigured tool" in html  # the step registration leaves out
    assert "Content-Security-Policy" in german.headers and "<script>" not in html  # no inline script
    english = client.get("/", headers={"Accept-Language": "fr-FR,en;q=0.8"}).get_data(as_text=True)
    assert '<html lang="en">' in english and i18n.text("landing_next", "en") in english


def test_the_landing_page_says_when_the_database_is_not_ready(app: Flask, client: FlaskClient) -> None:
    app.view_functions["health.readyz"] = lambda: ({"status": "not_ready", "database": "unavailable (X)"}, 503)
    html = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'data-ready="not_ready"' in html and i18n.text("landing_database_down", "en") in html


def test_manual_values_are_moodles_fields(app: Flask) -> None:
    with app.app_context():
        fields = dict((label, value) for label, value, _ in manual_values())
        base = current_config().base_url
    assert fields["Redirection URI(s)"] == fields["Tool URL"] == base + "/lti/launch"
    assert fields["Public keyset"] == base + "/lti/jwks" and fields["LTI version"] == "LTI 1.3"
    assert all(not re.search(r"@|sub|email", value) for value in fields.values())  # nothing personal
