"""Short-lived credentials that let openmwaa call an environment's Airflow REST API as an IAM caller.

InvokeRestApi runs "as the Airflow role IAM grants": openmwaa names the caller and one of Airflow's
five default roles in a JWT, and code installed in the Airflow runtime (``openmwaa_airflow``)
turns that JWT into an Airflow user so that Airflow's own RBAC decides what the call may do.

Airflow 3
    The api-server validates bearer tokens itself (``airflow.api_fastapi.auth.tokens.JWTValidator``):
    signature with ``[api_auth] jwt_secret``; algorithm ``[api_auth] jwt_algorithm``, which for a
    shared secret defaults to **HS512** (not HS256); audience ``[api_auth] jwt_audience``, default
    ``apache-airflow``; issuer only checked when ``[api_auth] jwt_issuer`` is set; ``exp``, ``iat``
    and ``nbf`` required; a ``jti``, if the token has one, looked up in Airflow's revoked-token
    table. The auth manager (``openmwaa_airflow.auth_manager``) then reads ``sub`` and ``role``
    (ADMIN/OP/USER/VIEWER/PUBLIC).
Airflow 2
    ``openmwaa_airflow.auth_backend`` verifies an HS256 JWT signed with ``OPENMWAA_TOKEN_SECRET``,
    audience ``openmwaa-airflow``, and logs in the FAB user named by ``sub`` with exactly the FAB
    role in ``role`` (Admin/Op/User/Viewer/Public).

Whoever holds either secret can act as any role: both stay inside openmwaa and the Airflow
processes, and Airflow listens on loopback only.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from typing import Final

import jwt

#: Airflow's five default roles, most privileged first (the order InvokeRestApi picks from).
AIRFLOW_ROLES: Final = ("Admin", "Op", "User", "Viewer", "Public")

#: Longest Airflow user name MWAA hands out (``AirflowIdentity`` is 1-64 characters).
MAX_AIRFLOW_USERNAME: Final = 64

#: What Airflow 3 expects by default (see the module docstring).
AIRFLOW3_AUDIENCE: Final = "apache-airflow"
AIRFLOW3_ALGORITHM: Final = "HS512"

#: What ``openmwaa_airflow.auth_backend`` expects on Airflow 2.
AIRFLOW2_AUDIENCE: Final = "openmwaa-airflow"
AIRFLOW2_ALGORITHM: Final = "HS256"

#: Issuer claim on every token. Airflow 3 ignores it unless ``[api_auth] jwt_issuer`` is set (then
#: set it to this value); it tells openmwaa's tokens apart from Airflow's own in logs and audits.
TOKEN_ISSUER: Final = "openmwaa"  # noqa: S105 (a claim value, not a secret)

#: A credential lives long enough for one proxied request, never longer than this.
MAX_TTL_SECONDS: Final = 3600.0


def airflow_username(identity: str) -> str:
    """Return the Airflow user name for an IAM identity such as ``assumed-role/Admin/ci-runner``.

    Identities of at most 64 characters are used as they are. Longer ones become the lowercase
    hexadecimal SHA-256 of the identity's UTF-8 bytes: exactly 64 characters, deterministic, so
    the same caller always maps to the same Airflow user. A hashed name cannot collide with an
    unhashed one because IAM identities are ``root`` or contain a ``/``, and hex digests do not.
    """
    if not identity:
        raise ValueError("identity must not be empty")
    if len(identity) <= MAX_AIRFLOW_USERNAME:
        return identity
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def mint_airflow_token(
    *,
    major: int,
    jwt_secret: str,
    token_secret: str,
    username: str,
    role: str,
    ttl: float = 60.0,
    now: float | None = None,
    audience: str | None = None,
    revocable: bool = True,
) -> str:
    """Sign a bearer token that makes Airflow treat the request as ``username`` with ``role``.

    ``major`` picks the runtime: 3 signs with ``jwt_secret`` (Airflow's ``[api_auth] jwt_secret``)
    and puts the role upper-case (``VIEWER``), 2 signs with ``token_secret``
    (``OPENMWAA_TOKEN_SECRET``) and keeps FAB's spelling (``Viewer``). ``audience`` overrides the
    default audience, for an Airflow 3 runtime configured with its own ``[api_auth] jwt_audience``.
    ``now`` (Unix seconds) is for tests; the token carries a fresh random ``jti``.

    ``revocable=False`` leaves the ``jti`` out of an Airflow 3 token: Airflow 3 looks every
    ``jti`` up in its revoked-token table, a database query on every request (~0.3-0.5 ms of
    ``/dags``' added latency through InvokeRestApi). Only for a token that never leaves openmwaa
    and lives at most a minute, such as InvokeRestApi's: nothing could revoke it (Airflow revokes
    the token of a browser's logout, which such a token never is). Airflow 2's backend requires a
    ``jti`` (and keeps no revocation table), so its tokens always carry one.
    """
    if role not in AIRFLOW_ROLES:
        raise ValueError(f"role must be one of {', '.join(AIRFLOW_ROLES)}")
    if not username or len(username) > MAX_AIRFLOW_USERNAME:
        raise ValueError(f"username must be 1-{MAX_AIRFLOW_USERNAME} characters; use airflow_username()")
    if not 0 < ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be in (0, {MAX_TTL_SECONDS:g}] seconds")

    if major == 3:
        key, algorithm, role_claim = jwt_secret, AIRFLOW3_ALGORITHM, role.upper()
        aud = audience or AIRFLOW3_AUDIENCE
    elif major == 2:
        key, algorithm, role_claim = token_secret, AIRFLOW2_ALGORITHM, role
        aud = audience or AIRFLOW2_AUDIENCE
    else:
        raise ValueError(f"unsupported Airflow major version: {major}")
    if not key:
        raise ValueError("the signing secret must not be empty")

    issued_at = int(time.time() if now is None else now)
    claims: dict[str, str | int] = {} if major == 3 and not revocable else {"jti": uuid.uuid4().hex}
    claims |= {
        "iss": TOKEN_ISSUER,
        "aud": aud,
        "sub": username,
        "role": role_claim,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + max(1, int(ttl)),
    }
    token: str = jwt.encode(claims, key, algorithm=algorithm)
    return token


class AirflowTokenCache:
    """Reuses a minted token while at least half of its lifetime remains.

    Signing costs tens of microseconds on every proxied call; a token names an identity and a
    role, not a request, so the same caller's calls within the same half-lifetime can share one.
    The cache key includes the signing secret, so a recreated environment never gets an old
    environment's token; it holds at most ``max_entries`` tokens (oldest dropped first).
    """

    def __init__(self, max_entries: int = 4096, *, revocable: bool = True) -> None:
        """``revocable``: see :func:`mint_airflow_token` (False only for tokens that never leave openmwaa)."""
        self._max_entries = max_entries
        self._revocable = revocable
        self._tokens: OrderedDict[tuple[object, ...], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def token(
        self,
        *,
        major: int,
        jwt_secret: str,
        token_secret: str,
        username: str,
        role: str,
        ttl: float = 60.0,
        now: float | None = None,
    ) -> str:
        now = time.time() if now is None else now
        key = (major, jwt_secret if major == 3 else token_secret, username, role, ttl)
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]
        token = mint_airflow_token(
            major=major,
            jwt_secret=jwt_secret,
            token_secret=token_secret,
            username=username,
            role=role,
            ttl=ttl,
            now=now,
            revocable=self._revocable,
        )
        with self._lock:
            self._tokens[key] = (token, now + ttl / 2)
            self._tokens.move_to_end(key)
            while len(self._tokens) > self._max_entries:
                self._tokens.popitem(last=False)
        return token
