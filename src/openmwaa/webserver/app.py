"""One environment's web endpoint (``WebServerHostname``): login, logout, console sign-in, CLI, proxy.

Routes (pure ASGI):

``POST /aws_mwaa/login``, ``POST /pluginsv2/aws_mwaa/login`` (form field ``token``)
    Redeem a web login token; 200 and the session cookie: ``session`` on the Airflow 2 route,
    ``_token`` on the Airflow 3 one (readable by Airflow 3's UI, which moves it to a bearer header),
    plus ``openmwaa_session`` (HttpOnly) so a browser stays signed in for page loads. ``GET`` shows
    a form to paste a token. A bad token answers 403 saying why.
``GET|POST /aws_mwaa/logout`` (and ``/pluginsv2/...``)
    End the session and clear the cookies.
``GET /aws_mwaa/aws-console-sso?login=true[&next=/path]#<WebToken>`` (and ``/pluginsv2/...``)
    A page whose script signs in with the token in the fragment and opens the Airflow UI (at the
    same-origin ``next`` path when given: the dashboard links to a DAG's page).
``POST /aws_mwaa/cli``
    The Airflow CLI for a CLI token (see ``webserver.cli_endpoint``).
anything else
    Proxied to the environment's Airflow for a signed-in session (see ``webserver.proxy``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import parse_qs, urlencode

from anyio.to_thread import run_sync

from openmwaa.errors import ThrottlingError
from openmwaa.request_body import BodyTimeoutError, BodyTooLargeError, ClientDisconnectedError, read_body
from openmwaa.runtime import versions
from openmwaa.runtime.airflow_token import AirflowTokenCache, airflow_username
from openmwaa.services.cli_commands import CliService
from openmwaa.services.web_tokens import InvalidWebTokenError, WebTokenService
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from openmwaa.upstream.balancer import Lease, retry_elsewhere
from openmwaa.upstream.client import Http1Client
from openmwaa.upstream.errors import UpstreamError
from openmwaa.upstream.write_gate import WriteGates
from openmwaa.webserver import pages
from openmwaa.webserver.api_compat import (
    MAX_TRIGGER_BODY,
    is_v1_trigger,
    rewrite_for_airflow3,
    trigger_body_for_airflow3,
)
from openmwaa.webserver.asgi import (
    Receive,
    Scope,
    Send,
    bearer_token,
    cookies,
    header,
    respond,
    respond_html,
    respond_json,
)
from openmwaa.webserver.cli_endpoint import CliEndpoint
from openmwaa.webserver.proxy import Upstream, forward
from openmwaa.webserver.sessions import WebSession, WebSessionStore

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "session"
AIRFLOW3_COOKIE: Final = "_token"
BROWSER_COOKIE: Final = "openmwaa_session"
OPENMWAA_COOKIES: Final = frozenset({SESSION_COOKIE, AIRFLOW3_COOKIE, BROWSER_COOKIE})
MAX_FORM_BYTES: Final = 16 * 1024
#: How long a looked-up environment record is reused (status and secrets change rarely).
RECORD_CACHE_SECONDS: Final = 2.0
#: Bound on the per-session Airflow credentials kept for reuse.

V2_PREFIX: Final = "/aws_mwaa"
#: Where Airflow 2's UI sends "Log Out" (FAB's logout view).
AIRFLOW2_LOGOUT_PATHS: Final = frozenset({"/logout", "/logout/"})
V3_PREFIX: Final = "/pluginsv2/aws_mwaa"


class RecordSource(Protocol):
    def get(self, key: EnvironmentKey) -> EnvironmentRecord | None: ...


class AirflowEndpoints(Protocol):
    def endpoint(self, key: str) -> str | None: ...
    def lease(self, key: str) -> Lease | None: ...


@dataclass(frozen=True)
class WebDependencies:
    """What every environment's web endpoint shares."""

    records: RecordSource
    tokens: WebTokenService
    sessions: WebSessionStore
    endpoints: AirflowEndpoints
    cli: CliService
    #: Cookies get ``Secure`` (the endpoint serves HTTPS).
    secure_cookies: bool
    clock: Callable[[], float] = time.time
    #: Lifetime of the Airflow credential minted for each proxied request.
    airflow_token_ttl: float = 60.0
    #: How long Airflow may take to start answering, and then to send each further piece (long for
    #: streamed logs and events), in seconds.
    upstream_read_timeout: float = 300.0
    #: A proxied write's body is read whole before it waits for the write gate: at most this many
    #: bytes, all within ``request_body_timeout`` seconds (a slow upload never holds the gate).
    max_request_body: int = 8 * 1024 * 1024
    request_body_timeout: float = 30.0
    #: One write at a time per Airflow (shared with InvokeRestApi; None: no gating).
    write_gates: WriteGates | None = None


def _wants_html(scope: Scope) -> bool:
    return "text/html" in (header(scope, "accept") or "")


def _safe_next(value: str | None) -> str | None:
    """A same-origin path to go to after signing in, or None (never ``//host`` or a scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x20 for c in value):
        return None
    return value


class EnvironmentWebApp:
    def __init__(self, key: str, deps: WebDependencies) -> None:
        self._key = key
        self._env_key = EnvironmentKey.parse(key)
        self._deps = deps
        self._client: Http1Client | None = None
        self._cached: tuple[float, EnvironmentRecord | None] | None = None
        self._tokens = AirflowTokenCache()
        self._cli = CliEndpoint(self._env_key.name, deps.cli, self._record)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            try:
                await self._http(scope, receive, send)
            except BodyTooLargeError as exc:
                await respond_json(
                    send,
                    413,
                    {"detail": f"Request body too large (at most {exc.limit} bytes)."},
                    headers=[("connection", "close")],
                )
            except BodyTimeoutError as exc:
                await respond_json(
                    send,
                    408,
                    {"detail": f"The request body did not arrive within {exc.timeout:g} seconds."},
                    headers=[("connection", "close")],
                )
            except ClientDisconnectedError:
                return
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # Routing ---------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        for prefix, cookie in ((V2_PREFIX, SESSION_COOKIE), (V3_PREFIX, AIRFLOW3_COOKIE)):
            if path == f"{prefix}/login":
                return await self._login(scope, receive, send, prefix=prefix, cookie=cookie)
            if path == f"{prefix}/logout":
                return await self._logout(scope, send, prefix=prefix)
            if path == f"{prefix}/aws-console-sso":
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                next_url = _safe_next(query.get("next", [None])[0]) or "/"
                return await respond_html(send, 200, pages.console_sso_page(f"{prefix}/login", next_url))
        if path == f"{V2_PREFIX}/cli":
            return await self._cli(scope, receive, send)
        if path in AIRFLOW2_LOGOUT_PATHS:
            # Airflow 2's own "Log Out" would only end Airflow's session, which the next proxied
            # request signs in again (openmwaa_airflow.web_login): end the web session instead.
            record = await self._record()
            if record is not None and versions.major(str(record.config["AirflowVersion"])) == 2:
                return await self._logout(scope, send, prefix=V2_PREFIX)
        return await self._proxy(scope, receive, send)

    async def _record(self) -> EnvironmentRecord | None:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > RECORD_CACHE_SECONDS:
            record = await run_sync(self._deps.records.get, self._env_key)
            self._cached = (now, record)
        return self._cached[1]

    async def _deny(
        self, scope: Scope, send: Send, status: int, message: str, prefix: str = V2_PREFIX
    ) -> None:
        if _wants_html(scope):
            await respond_html(send, status, pages.message_page("Access denied", message, f"{prefix}/login"))
        else:
            await respond_json(send, status, {"detail": message})

    # Login and logout ------------------------------------------------------------------

    async def _login(self, scope: Scope, receive: Receive, send: Send, *, prefix: str, cookie: str) -> None:
        login_path = f"{prefix}/login"
        if scope["method"] == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            next_url = _safe_next(query.get("next", [None])[0]) or "/"
            return await respond_html(send, 200, pages.login_form_page(login_path, next_url))
        if scope["method"] != "POST":
            return await respond_json(
                send, 405, {"detail": "Use POST with form field 'token'."}, headers=[("allow", "GET, POST")]
            )
        form = parse_qs(
            (await read_body(receive, MAX_FORM_BYTES)).decode("utf-8", "replace"), max_num_fields=8
        )
        tokens = form.get("token", [])
        if len(tokens) != 1:
            return await self._deny(
                scope, send, 400, "Send exactly one form field 'token' with the web login token.", prefix
            )
        record = await self._record()
        if record is None:
            return await self._deny(
                scope, send, 404, f"Environment {self._env_key.name} does not exist.", prefix
            )
        try:
            login = self._deps.tokens.redeem_web_token(tokens[0].strip(), environment_arn=record.arn)
        except InvalidWebTokenError as exc:
            log.info("web login refused on %s: %s", record.name, exc.message)
            return await self._deny(scope, send, 403, exc.message, prefix)
        except ThrottlingError:
            return await self._deny(scope, send, 429, "Too many logins right now; try again shortly.", prefix)
        session, token = self._deps.sessions.start(
            environment_arn=record.arn, identity=login.identity, role=login.role
        )
        log.info("web login on %s: %s as %s", record.name, login.identity, login.role)
        ttl = int(session.expires_at - self._deps.clock())
        set_cookies = [
            ("set-cookie", self._cookie(cookie, token, ttl, http_only=cookie != AIRFLOW3_COOKIE)),
            ("set-cookie", self._cookie(BROWSER_COOKIE, token, ttl, http_only=True)),
        ]
        after_login = _safe_next(form.get("next", [None])[0])
        await respond_html(send, 200, pages.signed_in_page(after_login), headers=set_cookies)

    def _cookie(self, name: str, value: str, max_age: int, *, http_only: bool) -> str:
        parts = [f"{name}={value}", "Path=/", f"Max-Age={max(0, max_age)}", "SameSite=Lax"]
        if http_only:
            parts.append("HttpOnly")
        if self._deps.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    async def _logout(self, scope: Scope, send: Send, *, prefix: str) -> None:
        record = await self._record()
        if record is not None:
            for token in self._session_tokens(scope):
                session = self._deps.sessions.resolve(token, environment_arn=record.arn)
                if session is not None:
                    self._deps.sessions.end(session.session_id)
        cleared = [
            ("set-cookie", self._cookie(name, "", 0, http_only=name != AIRFLOW3_COOKIE))
            for name in OPENMWAA_COOKIES
        ]
        page = pages.message_page("Signed out", "You are signed out of Apache Airflow.", f"{prefix}/login")
        await respond_html(send, 200, page, headers=cleared)

    def _session_tokens(self, scope: Scope) -> list[str]:
        jar = cookies(scope)
        candidates = [
            bearer_token(scope),
            jar.get(AIRFLOW3_COOKIE),
            jar.get(SESSION_COOKIE),
            jar.get(BROWSER_COOKIE),
        ]
        return [c for c in candidates if c]

    def _session(self, scope: Scope, record: EnvironmentRecord) -> WebSession | None:
        for token in self._session_tokens(scope):
            session = self._deps.sessions.resolve(token, environment_arn=record.arn)
            if session is not None:
                return session
        return None

    # Proxy -----------------------------------------------------------------------------

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = await self._record()
        if record is None:
            return await self._deny(scope, send, 404, f"Environment {self._env_key.name} does not exist.")
        major = versions.major(str(record.config["AirflowVersion"]))
        prefix = V3_PREFIX if major >= 3 else V2_PREFIX
        session = self._session(scope, record)
        if session is None:
            if scope["method"] == "GET" and _wants_html(scope):
                target = scope["path"] + (
                    f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else ""
                )
                location = f"{prefix}/login?{urlencode({'next': target})}"
                return await respond(
                    send, 302, b"", content_type="text/plain", headers=[("location", location)]
                )
            return await respond_json(
                send,
                401,
                {
                    "detail": "Not signed in: log in with a web login token (POST it as form field 'token' "
                    f"to {prefix}/login) and send the session cookie."
                },
                headers=[("www-authenticate", "Bearer")],
            )
        base = self._deps.endpoints.endpoint(self._key)
        if base is None:
            return await self._deny(
                scope,
                send,
                503,
                f"Environment {record.name} is {record.status}; its Airflow web server is not running.",
            )
        bearer = self._airflow_token(record, major, session)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = bytes(raw_path).decode("latin-1")
        query: bytes = scope.get("query_string", b"")
        body: bytes | None = None
        if major >= 3 and (v2_path := rewrite_for_airflow3(path)) is not None:
            if is_v1_trigger(scope["method"], path):
                raw = await read_body(receive, MAX_TRIGGER_BODY, timeout=self._deps.request_body_timeout)
                body = trigger_body_for_airflow3(raw)
            path = v2_path
        lease = self._deps.endpoints.lease(self._key)
        leases = [lease] if lease is not None else []
        upstream = Upstream(
            base_url=base.rstrip("/"),
            bearer=bearer,
            path=path,
            query=query,
            body=body,
            origin=lease.url if lease is not None else "",
        )
        if self._client is None:
            self._client = Http1Client(write_gates=self._deps.write_gates)

        def elsewhere(exc: UpstreamError) -> str | None:
            """The replica just tried is unreachable: another one for this request, if it may go."""
            tried = {held.url for held in leases}
            leases[-1].failed()
            following = (
                self._deps.endpoints.lease(self._key) if retry_elsewhere(scope["method"], exc) else None
            )
            if following is None or following.url in tried:
                if following is not None:
                    following.release()
                return None
            leases.append(following)
            return following.url

        try:
            await forward(
                self._client,
                upstream,
                scope,
                receive,
                send,
                drop_cookies=OPENMWAA_COOKIES,
                read_timeout=self._deps.upstream_read_timeout,
                max_body=self._deps.max_request_body,
                body_timeout=self._deps.request_body_timeout,
                elsewhere=elsewhere if leases else None,
            )
        finally:
            for held in leases:
                held.release()

    def _airflow_token(self, record: EnvironmentRecord, major: int, session: WebSession) -> str:
        """The Airflow credential for the session's identity and role (reused: ``AirflowTokenCache``).

        Reusing it is safe: it only ever travels to this environment's Airflow, and a request
        reaches this point only while the session itself is valid (logout takes effect at once).
        """
        return self._tokens.token(
            major=major,
            jwt_secret=record.secrets.get("jwt_secret", ""),
            token_secret=record.secrets.get("token_secret", ""),
            username=airflow_username(session.identity),
            role=session.role,
            ttl=self._deps.airflow_token_ttl,
            now=self._deps.clock(),
        )
