"""Airflow 2 web UI sign-in for openmwaa web sessions: ``[webserver] config_file`` names this file.

openmwaa's web endpoint proxies a signed-in browser to Airflow 2's Flask UI and adds to every
request the short-lived bearer JWT that ``openmwaa_airflow.auth_backend`` accepts for the REST API.
Airflow 2's UI only knows FAB's session login, so this file, used as Airflow's
``webserver_config.py``, installs a ``before_request`` hook that turns that bearer token into a
logged-in FAB user: found or created, and re-synced to exactly the token's role (MWAA re-syncs the
roles from IAM at every login). The UI then shows the IAM-mapped user with the IAM-granted role,
and there is no password form to get past.

* A request without a valid bearer token is anonymous, whatever its Flask session says: the UI is
  usable only through openmwaa's endpoint (Airflow itself listens on loopback).
* A bearer naming another user than the Flask session's logs that user in instead.
* ``/api/`` requests are left to the auth backend; static files and ``/health`` need nobody.
* Airflow's own session cookie is renamed ``airflow_session``: ``session`` is the name MWAA gives
  the web-login cookie, which openmwaa keeps and never forwards, while Airflow needs its own
  session to carry CSRF tokens and flash messages from page to page.

Flask executes this file with ``config.from_pyfile`` (module name ``config``) inside an app
context; only then is the hook installed on ``flask.current_app``. Importing it does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import g, request
from flask_appbuilder.const import AUTH_DB
from flask_login import current_user, login_user, logout_user

from openmwaa_airflow.auth_backend import _is_bearer, _Rejected, _synced_user, _validated_claims

log = logging.getLogger(__name__)

# Flask configuration: what Airflow's default webserver_config.py sets, and two changes.
AUTH_TYPE = AUTH_DB
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None
SESSION_COOKIE_NAME = "airflow_session"
# Flask-WTF's extra HTTPS check wants the Referer's host to be the request's Host, but behind the
# proxy Airflow sees its loopback address while browsers send openmwaa's. The CSRF token itself
# (and the SameSite=Lax session cookie) still guard every form.
WTF_CSRF_SSL_STRICT = False

_unauthenticated_prefixes = ("/api/", "/static/", "/health")


def _is_signed_in_as(user: Any, username: str, role: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(user.username == username and [r.name for r in user.roles] == [role])


def sign_in_from_bearer() -> None:
    """``before_request``: the bearer token's user is the request's user, or nobody is."""
    if request.path.startswith(_unauthenticated_prefixes):
        return
    header = request.headers.get("Authorization", "")
    try:
        claims = _validated_claims(header)
        if _is_signed_in_as(current_user, claims["sub"], claims["role"]):
            g.user = current_user._get_current_object()
            return
        user = _synced_user(claims["sub"], claims["role"])
    except _Rejected as exc:
        if _is_bearer(header):
            log.info("openmwaa token rejected for the web UI: %s", exc)
        if getattr(current_user, "is_authenticated", False):
            logout_user()
        return
    login_user(user, remember=False)
    g.user = user


def install(app: Any) -> None:
    """Run :func:`sign_in_from_bearer` before every request of Airflow's Flask app."""
    app.before_request(sign_in_from_bearer)


if __name__ == "config":  # executed as Airflow's webserver_config.py
    from flask import current_app

    install(current_app)
