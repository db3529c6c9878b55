"""Web sessions: what a redeemed web login token turns into, for 12 hours (configurable).

A session lives in this process's memory (identity, Airflow role, environment, expiry) under a
random id; the cookie (``session`` for the Airflow 2 login, ``_token`` for the Airflow 3 one, or
``Authorization: Bearer`` as Airflow 3 clients send it) carries an HS256 JWT naming that id,
signed with a key only openmwaa holds and bound to the environment ARN. A request is in a session
only if the JWT verifies *and* the id is still in memory: logging out, or restarting openmwaa,
ends the session for good. The JWT never reaches Airflow; the proxy sends a freshly minted
Airflow credential instead.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt

DEFAULT_SESSION_TTL: Final = 12 * 3600.0
MAX_SESSIONS: Final = 10_000
MAX_SESSION_TOKEN_CHARS: Final = 2048
_ALGORITHM: Final = "HS256"
_TYPE: Final = "openmwaa-session"


@dataclass(frozen=True)
class WebSession:
    session_id: str
    environment_arn: str
    identity: str
    role: str
    expires_at: float

    def __repr__(self) -> str:
        # The id is a bearer secret (it revokes and is looked up): keep it out of logs.
        return (
            f"WebSession(identity={self.identity!r}, role={self.role!r}, "
            f"environment={self.environment_arn!r})"
        )


class WebSessionStore:
    def __init__(
        self,
        key: bytes,
        *,
        ttl: float = DEFAULT_SESSION_TTL,
        clock: Callable[[], float] = time.time,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        if len(key) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        self._key = key
        self._ttl = ttl
        self._clock = clock
        self._max = max_sessions
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WebSessionStore(<{len(self._sessions)} sessions>)"

    @property
    def ttl(self) -> float:
        return self._ttl

    def start(self, *, environment_arn: str, identity: str, role: str) -> tuple[WebSession, str]:
        """A new session and the signed token that names it."""
        now = self._clock()
        session = WebSession(
            session_id=secrets.token_urlsafe(24),
            environment_arn=environment_arn,
            identity=identity,
            role=role,
            expires_at=now + self._ttl,
        )
        with self._lock:
            self._evict(now)
            self._sessions[session.session_id] = session
        claims: dict[str, Any] = {
            "typ": _TYPE,
            "sid": session.session_id,
            "aud": environment_arn,
            "sub": identity,
            "iat": int(now),
            "exp": int(session.expires_at),
        }
        token: str = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        return session, token

    def resolve(self, token: str, *, environment_arn: str) -> WebSession | None:
        """The live session ``token`` names for this environment, or None."""
        if not token or len(token) > MAX_SESSION_TOKEN_CHARS:
            return None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=environment_arn,
                options={"require": ["typ", "sid", "aud", "exp"], "verify_exp": False},
            )
        except jwt.InvalidTokenError:
            return None
        if claims.get("typ") != _TYPE or not isinstance(claims.get("sid"), str):
            return None
        with self._lock:
            session = self._sessions.get(claims["sid"])
        if session is None or session.environment_arn != environment_arn:
            return None
        if self._clock() >= session.expires_at:
            self.end(session.session_id)
            return None
        return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _evict(self, now: float) -> None:
        """Drop expired sessions; if still full, the ones closest to expiry (callers hold the lock)."""
        if len(self._sessions) < self._max:
            return
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires_at > now}
        while len(self._sessions) >= self._max:
            oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
            del self._sessions[oldest.session_id]
