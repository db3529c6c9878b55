"""``/dashboard``: the pipeline step that serves the dashboard (any other request passes on).

Routes (every one but ``signin`` needs the session cookie; without it the request is rejected):

``GET /dashboard/signin?X-Amz-...``  a pre-signed sign-in URL (``openmwaa dashboard``): a session
                                     cookie, and a redirect to the page
``GET /dashboard/``                  the page (``app.js``, ``app.css`` beside it)
``GET /dashboard/api/state``         the viewer's JSON view (what the page polls)
``GET /dashboard/airflow?environment=<arn>[&dag=<id>]``  into that environment's Airflow UI through
                                     a web login (``airflow:CreateWebLoginToken`` on its role ARNs)
``POST /dashboard/signout``          end the session

Errors go through the one hierarchy and are written by :func:`error_response` (JSON for the API,
a small page otherwise).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import parse_qs

from anyio.to_thread import run_sync

from openmwaa.api import dashboard_page
from openmwaa.auth.dashboard_signin import DashboardSessions, SignInVerifier
from openmwaa.errors import (
    AccessDeniedError,
    MissingAuthenticationTokenError,
    OpenMwaaError,
    ResourceNotFoundError,
    ValidationError,
)
from openmwaa.pipeline.authorization import first_allowed
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.response import Response
from openmwaa.pipeline.steps import is_s3_request
from openmwaa.principal import Principal
from openmwaa.services.dashboard import Conditions, DashboardService
from openmwaa.services.invoke import NO_ROLE_MESSAGE, role_arns, role_of

PREFIX: Final = "/dashboard"
SERVICE: Final = "dashboard"
COOKIE: Final = "openmwaa_dashboard"
SIGN_IN_HINT: Final = "Sign in with the URL `openmwaa dashboard` prints (it works once, for 60 seconds)."
_ENVIRONMENT_ARN: Final = re.compile(
    r"arn:aws:airflow:([a-z0-9-]{1,32}):(\d{12}):environment/([A-Za-z][0-9A-Za-z_-]{0,79})"
)
_DAG_ID: Final = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
_COMMON_HEADERS: Final = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    # The sign-in URL carries a signature: never let it leave in a Referer.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", dashboard_page.CONTENT_SECURITY_POLICY.encode()),
]

_OPERATIONS: Final = {
    "/signin": "SignIn",
    "/signout": "SignOut",
    "/api/state": "GetDashboard",
    "/airflow": "OpenAirflow",
}

#: The request's condition keys, for an environment with the given tags.
ConditionsFor = Callable[[RequestContext], Conditions]


def is_dashboard_request(ctx: RequestContext) -> bool:
    path = ctx.raw_path
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not is_s3_request(ctx)


def _respond(
    status: int, body: bytes, content_type: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> Response:
    return Response(status, body, [(b"content-type", content_type), *_COMMON_HEADERS, *extra])


def error_response(error: OpenMwaaError, ctx: RequestContext) -> Response:
    """Every dashboard error: JSON under ``/dashboard/api/``, a page elsewhere."""
    signed_out = isinstance(error, MissingAuthenticationTokenError)
    message = f"{error.message} {SIGN_IN_HINT}" if signed_out else error.message
    if error.status >= 500:
        message = f"An internal error occurred (request id {ctx.request_id})."
    if ctx.raw_path.startswith(f"{PREFIX}/api/"):
        body = {"code": error.code, "message": message, "signIn": signed_out, "requestId": ctx.request_id}
        return _respond(error.status, json.dumps(body).encode(), b"application/json")
    page = dashboard_page.message_page("openmwaa dashboard", message)
    return _respond(error.status, page.encode(), b"text/html; charset=utf-8")


class ServeDashboard:
    def __init__(
        self,
        service: DashboardService,
        *,
        signin: SignInVerifier,
        sessions: DashboardSessions,
        authorizer: Authorizer,
        conditions: ConditionsFor,
    ) -> None:
        self._service = service
        self._signin = signin
        self._sessions = sessions
        self._authorizer = authorizer
        self._conditions = conditions

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if not is_dashboard_request(ctx):
            return None
        ctx.service = SERVICE
        route = ctx.raw_path[len(PREFIX) :] or "/"
        ctx.operation = _OPERATIONS.get(route, "DashboardPage")
        # The audit trail names dashboard requests as such (the web login link records its
        # airflow:CreateWebLoginToken decision over this).
        ctx.action = f"dashboard:{ctx.operation}"
        method = "POST" if route == "/signout" else "GET"
        if ctx.method != method:
            raise ResourceNotFoundError(f"Use {method} {PREFIX}{route}.")
        if route == "/signin":
            return self._sign_in(ctx)
        principal = self._session_principal(ctx)
        if route == "/signout":
            self._sessions.end(self._cookie(ctx))
            page = dashboard_page.message_page("Signed out", "You are signed out of the dashboard.")
            cleared = self._set_cookie(ctx, "", 0)
            return _respond(200, page.encode(), b"text/html; charset=utf-8", (cleared,))
        if route == "/api/state":
            view = await self._service.view(principal, self._conditions(ctx))
            return _respond(200, json.dumps(view).encode(), b"application/json")
        if route == "/airflow":
            return await self._open_airflow(ctx, principal)
        static = {
            "/": (dashboard_page.page(), b"text/html; charset=utf-8"),
            "/app.js": (dashboard_page.SCRIPT, b"text/javascript; charset=utf-8"),
            "/app.css": (dashboard_page.STYLE, b"text/css; charset=utf-8"),
        }.get(route)
        if static is None:
            raise ResourceNotFoundError(f"{PREFIX}{route[:64]} does not exist.")
        return _respond(200, static[0].encode(), static[1])

    def _sign_in(self, ctx: RequestContext) -> Response:
        ctx.principal = self._signin.verify(ctx)
        token = self._sessions.start(ctx.principal)
        return _respond(
            303,
            b"",
            b"text/plain",
            ((b"location", f"{PREFIX}/".encode()), self._set_cookie(ctx, token, int(self._sessions.ttl))),
        )

    def _session_principal(self, ctx: RequestContext) -> Principal:
        principal = self._sessions.resolve(self._cookie(ctx))
        if principal is None:
            raise MissingAuthenticationTokenError(
                "You are not signed in to the dashboard, or the session ended."
            )
        ctx.principal = principal
        return principal

    async def _open_airflow(self, ctx: RequestContext, principal: Principal) -> Response:
        query = parse_qs(ctx.raw_query, max_num_fields=4, strict_parsing=bool(ctx.raw_query))
        arns, dags = query.get("environment", []), query.get("dag", [])
        if len(arns) != 1 or len(dags) > 1 or set(query) - {"environment", "dag"}:
            raise ValidationError("Give one 'environment' (an environment ARN) and at most one 'dag'.")
        match = _ENVIRONMENT_ARN.fullmatch(arns[0])
        if match is None or (dags and not _DAG_ID.fullmatch(dags[0])):
            raise ValidationError("'environment' must be an environment ARN and 'dag' a DAG id.")
        region, account, name = match.groups()
        try:
            record = self._service.find(arns[0])
            tags: Mapping[str, str] = record.tags
        except ResourceNotFoundError:
            record, tags = None, {}
        allowed = first_allowed(
            self._authorizer,
            ctx,
            "airflow:CreateWebLoginToken",
            role_arns(region, account, name),
            self._conditions(ctx)(tags),
        )
        if allowed is None or record is None:  # a viewer granted no role learns nothing more
            raise AccessDeniedError(NO_ROLE_MESSAGE)
        url = await run_sync(
            self._service.web_login_url, record, principal, role_of(allowed), dags[0] if dags else None
        )
        return _respond(303, b"", b"text/plain", ((b"location", url.encode()),))

    @staticmethod
    def _cookie(ctx: RequestContext) -> str | None:
        for name, value in ctx.headers:
            if name != "cookie":
                continue
            for part in value.split(";"):
                key, _, cookie = part.strip().partition("=")
                if key == COOKIE:
                    return cookie
        return None

    @staticmethod
    def _set_cookie(ctx: RequestContext, value: str, max_age: int) -> tuple[bytes, bytes]:
        parts = [
            f"{COOKIE}={value}",
            f"Path={PREFIX}",
            f"Max-Age={max(0, max_age)}",
            "HttpOnly",
            "SameSite=Strict",
        ]
        if ctx.scheme == "https":
            parts.append("Secure")
        return (b"set-cookie", "; ".join(parts).encode())
