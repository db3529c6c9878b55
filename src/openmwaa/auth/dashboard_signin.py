"""Dashboard sign-in: a pre-signed SigV4 URL, exchanged once for a short session.

``openmwaa dashboard`` signs ``GET /dashboard/signin`` with the caller's AWS credentials in the
query string (``X-Amz-Signature``, service ``airflow``, as botocore's pre-signer writes it) and
prints the URL. The endpoint verifies it like any SigV4 request (constant-time compare, clock skew,
the credential scope), and more strictly than a pre-signed S3 URL:

- ``X-Amz-Expires`` is at most :data:`MAX_SIGNIN_EXPIRES` seconds (the CLI asks for 60);
- the URL works **once**: its signature is remembered until the URL expires, and a second use is
  refused (a URL copied from a terminal's scroll-back or a proxy log signs nobody in);
- the sign-in yields a :class:`DashboardSessions` session, named by a random 256-bit id in an
  HttpOnly, SameSite=Strict cookie, valid :data:`DEFAULT_SESSION_TTL` seconds. Only a digest of
  the id is kept, and a session holds the signer's principal: every dashboard request is
  authorized again from that principal's current policies.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from openmwaa.auth.credentials import CredentialLookup
from openmwaa.auth.sigv4 import amz_timestamp, is_presigned, verify_presigned
from openmwaa.errors import (
    AccessDeniedError,
    IncompleteSignatureError,
    MissingAuthenticationTokenError,
    ThrottlingError,
)
from openmwaa.pipeline.context import RequestContext
from openmwaa.principal import Principal

#: The service name the sign-in URL is signed for (MWAA's signing name).
SIGNING_SERVICE: Final = "airflow"
#: The longest validity a sign-in URL may ask for, in seconds.
MAX_SIGNIN_EXPIRES: Final = 300
#: How long a dashboard session lasts, in seconds.
DEFAULT_SESSION_TTL: Final = 3600.0
MAX_SESSIONS: Final = 10_000
#: Sign-in signatures remembered at once (each until its URL expires); past this, sign-ins wait.
MAX_REMEMBERED_SIGNATURES: Final = 100_000
MAX_SESSION_TOKEN_CHARS: Final = 128


class SignInVerifier:
    """Checks a pre-signed sign-in URL and uses it up."""

    def __init__(
        self,
        *,
        region: str,
        credentials: CredentialLookup,
        clock: Callable[[], float] = time.time,
        clock_skew: float = 300.0,
        max_expires: int = MAX_SIGNIN_EXPIRES,
    ) -> None:
        self._region = region
        self._credentials = credentials
        self._clock = clock
        self._clock_skew = clock_skew
        self._max_expires = max_expires
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, ctx: RequestContext) -> Principal:
        """Who signed this sign-in URL; AuthenticationError or AccessDeniedError when it does not sign in."""
        if not is_presigned(ctx):
            raise MissingAuthenticationTokenError(
                "Open the URL `openmwaa dashboard` prints (a pre-signed sign-in URL)."
            )
        params = _amz_params(ctx.raw_query)
        expires = params.get("X-Amz-Expires", "")
        if not expires.isdigit() or len(expires) > 7 or int(expires) > self._max_expires:
            raise IncompleteSignatureError(
                f"A dashboard sign-in URL is valid for at most {self._max_expires} seconds (X-Amz-Expires)."
            )
        now = self._clock()
        principal = verify_presigned(
            ctx,
            service=SIGNING_SERVICE,
            region=self._region,
            credentials=self._credentials,
            now=now,
            clock_skew=self._clock_skew,
            payload_hash=hashlib.sha256(ctx.body).hexdigest(),
        )
        # Verified: the date parses and the URL has not expired.
        self._use_once(params["X-Amz-Signature"], amz_timestamp(params["X-Amz-Date"]) + int(expires), now)
        return principal

    def _use_once(self, signature: str, expires_at: float, now: float) -> None:
        with self._lock:
            if signature in self._used:
                raise AccessDeniedError(
                    "This sign-in URL has already been used; run `openmwaa dashboard` for a new one."
                )
            if len(self._used) >= MAX_REMEMBERED_SIGNATURES:
                self._used = {k: v for k, v in self._used.items() if v > now}
                if len(self._used) >= MAX_REMEMBERED_SIGNATURES:
                    raise ThrottlingError()
            self._used[signature] = expires_at


def _amz_params(raw_query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in raw_query.split("&"):
        name, _, value = pair.partition("=")
        if name.startswith("X-Amz-"):
            params.setdefault(name, unquote(value))
    return params


@dataclass(frozen=True)
class DashboardSession:
    principal: Principal
    expires_at: float

    def __repr__(self) -> str:
        return f"DashboardSession(principal={self.principal.arn!r})"


class DashboardSessions:
    """Sessions in this process's memory, keyed by the SHA-256 of their random id.

    The lookup is of a digest of the cookie, so its timing says nothing about any stored id;
    restarting openmwaa ends every session.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_SESSION_TTL,
        clock: Callable[[], float] = time.time,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max_sessions
        self._sessions: dict[bytes, DashboardSession] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DashboardSessions(<{len(self._sessions)} sessions>)"

    @property
    def ttl(self) -> float:
        return self._ttl

    def start(self, principal: Principal) -> str:
        """A new session for ``principal``; the secret to put in its cookie."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            if len(self._sessions) >= self._max:
                self._sessions = {k: s for k, s in self._sessions.items() if s.expires_at > now}
                while len(self._sessions) >= self._max:
                    oldest = min(self._sessions, key=lambda k: self._sessions[k].expires_at)
                    del self._sessions[oldest]
            self._sessions[_digest(token)] = DashboardSession(principal, now + self._ttl)
        return token

    def resolve(self, token: str | None) -> Principal | None:
        """The principal of the live session ``token`` names, or None."""
        if not token or len(token) > MAX_SESSION_TOKEN_CHARS:
            return None
        key = _digest(token)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._clock() >= session.expires_at:
                del self._sessions[key]
                return None
        return session.principal

    def end(self, token: str | None) -> None:
        if token and len(token) <= MAX_SESSION_TOKEN_CHARS:
            with self._lock:
                self._sessions.pop(_digest(token), None)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
