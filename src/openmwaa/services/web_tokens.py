"""Web login and CLI tokens: what CreateWebLoginToken and CreateCliToken hand out, and redeeming them.

Both are HS256 JWTs signed with a key derived from openmwaa's master key (``SecretBox.derive_key``).
Each kind signs with its own key derived from that one (HMAC-SHA256 of the kind's name), so a CLI
token can never pass as a web token or as a session, whatever its claims say.

WebToken (CreateWebLoginToken)
    Valid 60 s, **single use**, bound to the environment ARN (``aud``), the IAM identity (``sub``)
    and the Airflow role IAM granted (``role``). Redeeming it remembers its ``jti`` until it
    expires, so a second login with the same token is refused.
CliToken (CreateCliToken)
    Valid 60 s, bound to the environment ARN and the identity. **Reusable until it expires**: MWAA
    documents only the 60 s lifetime, and scripts commonly run a few commands with one token; the
    short lifetime and the environment binding are the protection, as with a SigV4 signature.

Every token also carries a random id of this service instance (``boot``): tokens minted before a
restart are refused afterwards, because the used-``jti`` memory does not survive the restart.
Parsing is strict: one algorithm, every claim required, bounded length, exact audience, expiry
against the injected clock with no leeway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt

from openmwaa.errors import AccessDeniedError, ThrottlingError

#: The label of the key these tokens are signed with, derived from openmwaa's master key.
KEY_LABEL: Final = "web-tokens"
#: Where older versions kept that key as a second master key; removed at start-up.
OLD_KEY_FILE: Final = "web-token.key"
TOKEN_TTL_SECONDS: Final = 60.0
MAX_TOKEN_CHARS: Final = 4096
#: Unexpired used web tokens remembered at once; past this, logins wait (a flood, not real use).
MAX_REMEMBERED_JTIS: Final = 100_000
_ALGORITHM: Final = "HS256"
_ISSUER: Final = "openmwaa"
_WEB: Final = "web-login"
_CLI: Final = "cli"
_REQUIRED: Final = ["exp", "iat", "jti", "sub", "aud", "iss", "typ", "boot"]


class InvalidWebTokenError(AccessDeniedError):
    """A web login or CLI token that is forged, expired, already used or for another environment."""


@dataclass(frozen=True)
class WebLogin:
    """Who a redeemed web login token speaks for."""

    environment_arn: str
    identity: str
    role: str


@dataclass(frozen=True)
class CliLogin:
    environment_arn: str
    identity: str


def derive_key(master: bytes, purpose: str) -> bytes:
    """A key for one purpose only (web tokens, CLI tokens, sessions) from the master key."""
    return hmac.new(master, f"openmwaa/{purpose}".encode(), hashlib.sha256).digest()


class WebTokenService:
    def __init__(self, master_key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(master_key) < 32:
            raise ValueError("the master key must be at least 32 bytes")
        self._keys = {_WEB: derive_key(master_key, _WEB), _CLI: derive_key(master_key, _CLI)}
        self._clock = clock
        self._boot = secrets.token_hex(8)
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "WebTokenService(<keys hidden>)"

    # Issuing ---------------------------------------------------------------------------

    def issue_web_token(self, *, environment_arn: str, identity: str, role: str) -> str:
        return self._issue(_WEB, environment_arn, identity, {"role": role})

    def issue_cli_token(self, *, environment_arn: str, identity: str) -> str:
        return self._issue(_CLI, environment_arn, identity, {})

    def _issue(self, kind: str, audience: str, identity: str, extra: dict[str, Any]) -> str:
        now = self._clock()
        claims = {
            "iss": _ISSUER,
            "typ": kind,
            "aud": audience,
            "sub": identity,
            "jti": uuid.uuid4().hex,
            "iat": int(now),
            "exp": int(now + TOKEN_TTL_SECONDS),
            "boot": self._boot,
            **extra,
        }
        token: str = jwt.encode(claims, self._keys[kind], algorithm=_ALGORITHM)
        return token

    # Redeeming -------------------------------------------------------------------------

    def redeem_web_token(self, token: str, *, environment_arn: str) -> WebLogin:
        """Check a web login token for this environment and use it up; raise InvalidWebTokenError."""
        claims = self._verify(_WEB, token, environment_arn)
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            raise InvalidWebTokenError("The web login token names no Airflow role.")
        self._use_once(str(claims["jti"]), float(claims["exp"]))
        return WebLogin(environment_arn=environment_arn, identity=str(claims["sub"]), role=role)

    def verify_cli_token(self, token: str, *, environment_arn: str) -> CliLogin:
        """Check a CLI token for this environment (reusable until it expires)."""
        claims = self._verify(_CLI, token, environment_arn)
        return CliLogin(environment_arn=environment_arn, identity=str(claims["sub"]))

    def _verify(self, kind: str, token: str, audience: str) -> dict[str, Any]:
        what = "web login token" if kind == _WEB else "CLI token"
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidWebTokenError(f"The {what} is missing or malformed.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._keys[kind],
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={
                    "require": _REQUIRED,
                    # Audience and time are checked below, against this environment and our clock.
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError:
            raise InvalidWebTokenError(
                f"The {what} is not valid (forged, truncated or of another kind)."
            ) from None
        if claims.get("typ") != kind:
            raise InvalidWebTokenError(f"The {what} is not valid (forged, truncated or of another kind).")
        aud, sub, exp, iat = claims.get("aud"), claims.get("sub"), claims.get("exp"), claims.get("iat")
        if not isinstance(aud, str) or not hmac.compare_digest(aud.encode(), audience.encode()):
            raise InvalidWebTokenError(f"The {what} was issued for another environment.")
        if not isinstance(sub, str) or not sub:
            raise InvalidWebTokenError(f"The {what} names no identity.")
        if not isinstance(exp, int) or not isinstance(iat, int) or exp - iat > TOKEN_TTL_SECONDS:
            raise InvalidWebTokenError(f"The {what} has an invalid lifetime.")
        now = self._clock()
        if now >= exp:
            raise InvalidWebTokenError(
                f"The {what} has expired (they are valid for 60 seconds); create a new one."
            )
        if claims.get("boot") != self._boot:
            raise InvalidWebTokenError(f"The {what} was issued before openmwaa restarted; create a new one.")
        return claims

    def _use_once(self, jti: str, expires: float) -> None:
        now = self._clock()
        with self._lock:
            if jti in self._used:
                raise InvalidWebTokenError("The web login token has already been used; create a new one.")
            if len(self._used) >= MAX_REMEMBERED_JTIS:
                self._used = {k: v for k, v in self._used.items() if v > now}
                if len(self._used) >= MAX_REMEMBERED_JTIS:
                    raise ThrottlingError()
            self._used[jti] = expires
