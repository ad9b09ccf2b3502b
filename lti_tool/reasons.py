"""The one vocabulary of launch rejection reasons, and the one way a rejection is answered: page, log, counter.

docs/LTI.md lists the same codes; a test checks that every code here is documented there.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Response, make_response, render_template, request
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.metrics import LAUNCH_REJECTIONS
from lti_tool.models import Platform
from lti_tool.security import allow_framing_by

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    """A rejection reason: a stable code, the HTTP status of its error page and what a user is told."""

    code: str
    status: int
    message: str


_RELAUNCH = " Open the activity again from the course."
_ADMIN = " Your LMS administrator needs to fix the tool registration."

REASONS: dict[str, Reason] = {r.code: r for r in (
    # OIDC login (step 1)
    Reason("login_invalid", 400, "The login request lacks a required parameter, has an overlong one or targets "
                                 "another tool." + _RELAUNCH),
    Reason("rate_limited", 429, "Too many requests from your network address. Wait a minute, then open the "
                                "activity again."),
    Reason("unknown_platform", 403, "This LMS (issuer and client id) is not registered with CourseBots." + _ADMIN),
    # id_token format and algorithm
    Reason("id_token_missing", 400, "The launch did not include an id_token." + _RELAUNCH),
    Reason("token_malformed", 400, "The launch token is not a well-formed JWT." + _RELAUNCH),
    Reason("alg_none", 401, "The launch token is unsigned (alg none) and was refused."),
    Reason("alg_symmetric", 401, "The launch token is signed with a shared-secret algorithm (HS*) and was refused."),
    Reason("alg_unsupported", 401, "The launch token uses a signing algorithm other than RS256."),
    # state and nonce (binding the launch to this browser's login)
    Reason("state_missing", 400, "The launch has no state parameter." + _RELAUNCH),
    Reason("state_unknown", 400, "The launch's state was never issued here or has expired." + _RELAUNCH),
    Reason("state_mismatch", 400, "The launch's state does not belong to this browser's login." + _RELAUNCH),
    Reason("nonce_mismatch", 400, "The launch token's nonce is not the one issued at login." + _RELAUNCH),
    Reason("nonce_replayed", 400, "This launch was already used once and cannot be replayed." + _RELAUNCH),
    # who sent it
    Reason("unknown_issuer", 403, "The launch token's issuer is not a registered LMS." + _ADMIN),
    Reason("wrong_issuer", 400, "The launch token's issuer is not the LMS the login started from."),
    Reason("wrong_audience", 400, "The launch token is not addressed to this tool's client id."),
    Reason("wrong_azp", 400, "The launch token's authorized party (azp) is not this tool's client id."),
    Reason("unknown_deployment", 403, "This deployment of the tool is not registered with CourseBots." + _ADMIN),
    # signature and keys
    Reason("kid_missing", 401, "The launch token does not name its signing key (kid)."),
    Reason("unknown_kid", 401, "The launch token is signed with a key the LMS does not publish."),
    Reason("jwks_unreachable", 502, "CourseBots could not fetch the LMS's public keys. Try again in a moment."),
    Reason("bad_signature", 401, "The launch token's signature is not valid."),
    # time
    Reason("token_expired", 401, "The launch token has expired." + _RELAUNCH),
    Reason("iat_in_future", 401, "The launch token was issued in the future (check the servers' clocks)."),
    # message content
    Reason("claims_missing", 400, "The launch token lacks claims LTI 1.3 requires."),
    Reason("wrong_version", 400, "The launch is not an LTI 1.3.0 message."),
    Reason("wrong_message_type", 400, "CourseBots does not handle this kind of LTI message."),
    Reason("deep_linking_not_allowed", 403, "Only teachers may add CourseBots to a course."),
    # Dynamic Registration (the admin sees these inside the platform's registration frame)
    Reason("registration_missing_parameters", 400,
           "This address must be opened by the platform's Dynamic Registration (it needs an "
           "openid_configuration URL)."),
    Reason("registration_issuer_not_allowed", 403,
           "CourseBots may not contact this platform for registration. Ask the CourseBots administrator to add "
           "its issuer to COURSEBOTS_REGISTRATION_ALLOWED_ISSUERS (needed for platforms on private addresses)."),
    Reason("registration_configuration_unreachable", 502,
           "CourseBots could not fetch the platform's OpenID configuration. Check that the platform is "
           "reachable from the CourseBots server."),
    Reason("registration_configuration_invalid", 502,
           "The platform's OpenID configuration is not a valid LTI platform configuration."),
    Reason("registration_endpoint_unreachable", 502,
           "CourseBots could not reach the platform's registration endpoint."),
    Reason("registration_rejected", 502,
           "The platform refused the registration (the registration token may have expired: start the "
           "registration again in the platform)."),
    Reason("registration_invalid_response", 502,
           "The platform's answer to the registration had no client id or deployment id."),
)}


class LaunchRejected(Exception):
    """A launch or login that failed validation; carries a code from :data:`REASONS`."""

    def __init__(self, code: str, issuer: str = "", deployment_id: str = "") -> None:
        if code not in REASONS:
            raise ValueError(f"undocumented rejection reason {code!r}")
        super().__init__(code)
        self.code = code
        self.reason = REASONS[code]
        # Only protocol identifiers (never user data) travel with a rejection, for logs.
        self.issuer = issuer
        self.deployment_id = deployment_id


def allow_framing_by_issuer(issuer: str) -> None:
    """Let the page be framed by the registered platform of ``issuer``, or by anyone when it is unknown."""
    known = bool(issuer) and db.session.scalars(select(Platform.id).where(Platform.issuer == issuer)).first()
    parts = urlsplit(issuer)
    # An unknown sender still deserves a readable page inside its frame.
    allow_framing_by(f"{parts.scheme}://{parts.netloc}" if known else "*")


def rejection_response(exc: LaunchRejected) -> Response:
    """The iframe-safe error page of a rejection: counted, logged without personal data, frameable by its sender."""
    LAUNCH_REJECTIONS.labels(reason=exc.code).inc()
    logger.warning("launch rejected reason=%s issuer=%s deployment=%s", exc.code, exc.issuer or "-",
                   exc.deployment_id or "-")
    db.session.rollback()
    allow_framing_by_issuer(exc.issuer)
    # The browser's language: the launch failed, so no session says which one the user reads.
    lang = request.accept_languages.best_match(["en", "de"]) or "en"
    message = MESSAGES_DE.get(exc.code, exc.reason.message) if lang == "de" else exc.reason.message
    page = render_template("lti/error.html", code=exc.code, message=message, lang=lang, texts=PAGE_TEXTS[lang])
    return make_response(page, exc.reason.status)


_NEU = " Öffnen Sie die Aktivität im Kurs erneut."
_ADMIN_DE = " Die Administration Ihres Lernmanagementsystems muss die Registrierung des Tools korrigieren."
# What a German-speaking user is told (browser language German); the English texts above stay the reference.
MESSAGES_DE: dict[str, str] = {
    "login_invalid": "Der Anmeldeanfrage fehlt ein nötiger Parameter, einer ist zu lang, oder sie gilt einem anderen "
                     "Tool." + _NEU,
    "rate_limited": "Zu viele Anfragen von Ihrer Netzwerkadresse. Warten Sie eine Minute und öffnen Sie die Aktivität "
                    "dann erneut.",
    "unknown_platform": "Dieses Lernmanagementsystem (Aussteller und Client-ID) ist bei CourseBots nicht "
                        "registriert." + _ADMIN_DE,
    "id_token_missing": "Der Start enthielt kein id_token." + _NEU,
    "token_malformed": "Das Start-Token ist kein gültiges JWT." + _NEU,
    "alg_none": "Das Start-Token ist nicht signiert (alg none) und wurde abgelehnt.",
    "alg_symmetric": "Das Start-Token ist mit einem gemeinsamen Geheimnis (HS*) signiert und wurde abgelehnt.",
    "alg_unsupported": "Das Start-Token verwendet ein anderes Signaturverfahren als RS256.",
    "state_missing": "Dem Start fehlt der state-Parameter." + _NEU,
    "state_unknown": "Der state des Starts wurde hier nie ausgegeben oder ist abgelaufen." + _NEU,
    "state_mismatch": "Der state des Starts gehört nicht zur Anmeldung dieses Browsers." + _NEU,
    "nonce_mismatch": "Die Nonce des Start-Tokens ist nicht die bei der Anmeldung ausgegebene." + _NEU,
    "nonce_replayed": "Dieser Start wurde bereits einmal verwendet und kann nicht wiederholt werden." + _NEU,
    "unknown_issuer": "Der Aussteller des Start-Tokens ist kein registriertes Lernmanagementsystem." + _ADMIN_DE,
    "wrong_issuer": "Der Aussteller des Start-Tokens ist nicht das System, bei dem die Anmeldung begann.",
    "wrong_audience": "Das Start-Token ist nicht an die Client-ID dieses Tools gerichtet.",
    "wrong_azp": "Die berechtigte Partei (azp) des Start-Tokens ist nicht die Client-ID dieses Tools.",
    "unknown_deployment": "Diese Bereitstellung (Deployment) des Tools ist bei CourseBots nicht registriert."
                          + _ADMIN_DE,
    "kid_missing": "Das Start-Token nennt seinen Signaturschlüssel (kid) nicht.",
    "unknown_kid": "Das Start-Token ist mit einem Schlüssel signiert, den das Lernmanagementsystem nicht "
                   "veröffentlicht.",
    "jwks_unreachable": "CourseBots konnte die öffentlichen Schlüssel des Lernmanagementsystems nicht abrufen. "
                        "Versuchen Sie es gleich noch einmal.",
    "bad_signature": "Die Signatur des Start-Tokens ist ungültig.",
    "token_expired": "Das Start-Token ist abgelaufen." + _NEU,
    "iat_in_future": "Das Start-Token wurde in der Zukunft ausgestellt (prüfen Sie die Uhren der Server).",
    "claims_missing": "Dem Start-Token fehlen Angaben, die LTI 1.3 verlangt.",
    "wrong_version": "Der Start ist keine LTI-1.3.0-Nachricht.",
    "wrong_message_type": "CourseBots verarbeitet diese Art von LTI-Nachricht nicht.",
    "deep_linking_not_allowed": "Nur Lehrende können CourseBots einem Kurs hinzufügen.",
    "registration_missing_parameters": "Diese Adresse muss von der dynamischen Registrierung des "
                                       "Lernmanagementsystems geöffnet werden (sie braucht eine "
                                       "openid_configuration-URL).",
    "registration_issuer_not_allowed": "CourseBots darf dieses System für die Registrierung nicht kontaktieren. "
                                       "Bitten Sie die Administration von CourseBots, seinen Aussteller in "
                                       "COURSEBOTS_REGISTRATION_ALLOWED_ISSUERS aufzunehmen (nötig für Systeme an "
                                       "privaten Adressen).",
    "registration_configuration_unreachable": "CourseBots konnte die OpenID-Konfiguration des Systems nicht "
                                              "abrufen. Prüfen Sie, ob das System vom CourseBots-Server aus "
                                              "erreichbar ist.",
    "registration_configuration_invalid": "Die OpenID-Konfiguration des Systems ist keine gültige "
                                          "LTI-Plattform-Konfiguration.",
    "registration_endpoint_unreachable": "CourseBots konnte den Registrierungsendpunkt des Systems nicht erreichen.",
    "registration_rejected": "Das System hat die Registrierung abgelehnt (das Registrierungs-Token ist vielleicht "
                             "abgelaufen: Starten Sie die Registrierung im System erneut).",
    "registration_invalid_response": "Die Antwort des Systems auf die Registrierung enthielt keine Client-ID oder "
                                     "Deployment-ID.",
}
PAGE_TEXTS: dict[str, dict[str, str]] = {
    "en": {"title": "CourseBots — error", "heading": "CourseBots could not open", "code": "Reason code:",
           "tell": "If this keeps happening, tell your LMS administrator the reason code above."},
    "de": {"title": "CourseBots – Fehler", "heading": "CourseBots konnte nicht geöffnet werden",
           "code": "Fehlercode:",
           "tell": "Wenn das wiederholt passiert, nennen Sie der Administration Ihres Lernmanagementsystems den "
                   "Fehlercode oben."},
}
