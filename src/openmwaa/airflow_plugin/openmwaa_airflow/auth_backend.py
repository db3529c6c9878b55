"""Airflow 2 REST API auth backend: ``[api] auth_backends = openmwaa_airflow.auth_backend``.

A request authenticates with ``Authorization: Bearer <JWT>`` where the JWT is what openmwaa mints
for InvokeRestApi: HS256, signed with the environment's ``OPENMWAA_TOKEN_SECRET``, audience
``openmwaa-airflow``, with ``exp``/``iat``/``nbf``/``jti``, ``sub`` (the Airflow user name, at most 64
characters) and ``role`` (one of FAB's default roles Admin/Op/User/Viewer/Public).

On success the FAB user named by ``sub`` is found or created, its roles are set to exactly
``role`` (MWAA re-syncs roles from IAM at every login, removing any others), and that user is
logged in for this request only (the API blueprint never saves a session), so FAB's permission
checks decide what the call may do and the audit log names the user. A bearer token that fails
any check (signature, audience, expiry, role, no secret configured) ends the request with 401.
Without a bearer token this backend declines (401 to Airflow), and Airflow 2 then treats the caller
as anonymous: FAB's "Public" role, which has no permissions by default, so 403.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

import jwt
from flask import Response, current_app, g, request
from flask_login import login_user

log = logging.getLogger(__name__)

SECRET_ENV = "OPENMWAA_TOKEN_SECRET"  # noqa: S105 (a variable name, not a secret)
AUDIENCE = "openmwaa-airflow"
ALGORITHMS = ["HS256"]
ROLES = ("Admin", "Op", "User", "Viewer", "Public")
# Clock skew tolerated between openmwaa and Airflow (same host in practice).
LEEWAY_SECONDS = 10
# openmwaa mints 60 s tokens; refuse anything meant to live much longer.
MAX_LIFETIME_SECONDS = 3600
MAX_TOKEN_CHARS = 4096
MAX_USERNAME = 64
# Synthetic, unique, undeliverable e-mail for created users (FAB requires one).
EMAIL_DOMAIN = "users.openmwaa.invalid"

# Airflow's API layer wraps its own Response in our decorator (see check_authentication).
CLIENT_AUTH: tuple[str, str] | Any | None = None

T = TypeVar("T", bound=Callable[..., Any])


class _Rejected(Exception):
    """The request does not carry a credential openmwaa minted for this environment."""


def init_app(_: Any) -> None:
    """Nothing to set up. The secret is read per request, so a missing one refuses every call (logged)."""


def requires_authentication(function: T) -> T:
    """Run ``function`` only for requests bearing a valid openmwaa token; else answer 401."""

    @wraps(function)
    def decorated(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        try:
            claims = _validated_claims(header)
            user = _synced_user(claims["sub"], claims["role"])
        except _Rejected as exc:
            log.info("openmwaa token rejected: %s", exc)
            if _is_bearer(header):
                # A bearer credential that fails is final. Returning a plain 401 here would let
                # Airflow fall back to FAB's anonymous "Public" role and answer 403 instead.
                from airflow.api_connexion.exceptions import Unauthenticated

                raise Unauthenticated(
                    detail="Invalid or expired openmwaa token", headers={"WWW-Authenticate": "Bearer"}
                ) from None
            return Response("Unauthorized", 401, {"WWW-Authenticate": "Bearer"})
        login_user(user, remember=False)
        g.user = user
        return function(*args, **kwargs)

    return cast(T, decorated)


def _is_bearer(header: str) -> bool:
    return header.partition(" ")[0].lower() == "bearer"


def _validated_claims(header: str) -> dict[str, Any]:
    token = header.partition(" ")[2].strip()
    if not _is_bearer(header) or not token:
        raise _Rejected("no bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise _Rejected("token too long")
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        # Fail closed: without the environment's secret nothing can be verified.
        log.error("%s is not set; refusing every API request", SECRET_ENV)
        raise _Rejected("server has no token secret")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "jti", "sub", "role"]},
        )
    except jwt.InvalidTokenError as exc:
        raise _Rejected(type(exc).__name__) from None
    sub, role = claims["sub"], claims["role"]
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_USERNAME:
        raise _Rejected("bad sub")
    if role not in ROLES:
        raise _Rejected("bad role")
    if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
        raise _Rejected("lifetime too long")
    return claims


def _synced_user(username: str, role_name: str) -> Any:
    """Find or create FAB user ``username`` and make ``role_name`` its only role."""
    sm = current_app.appbuilder.sm
    role = sm.find_role(role_name)
    if role is None:
        # FAB creates the five default roles at webserver start; a missing one is a broken setup.
        log.error("FAB role %r does not exist", role_name)
        raise _Rejected("role missing")
    user = sm.find_user(username=username)
    if user is None:
        user = _created_user(sm, username, role)
    if [r.name for r in user.roles] != [role_name]:
        user.roles = [role]
        if sm.update_user(user) is False:
            raise _Rejected("could not sync roles")
    if not user.is_active:
        raise _Rejected("user deactivated")
    return user


def _created_user(sm: Any, username: str, role: Any) -> Any:
    digest = hashlib.sha256(username.encode("utf-8")).hexdigest()[:40]
    user = sm.add_user(
        username=username,
        first_name=username,
        last_name="",
        email=f"{digest}@{EMAIL_DOMAIN}",
        role=role,
        # A random password nobody knows: these users only ever log in with openmwaa tokens.
        password=secrets.token_urlsafe(32),
    )
    if not user:
        # Another worker created it concurrently (add_user rolled back); use theirs.
        user = sm.find_user(username=username)
    if not user:
        raise _Rejected("could not create user")
    return user
