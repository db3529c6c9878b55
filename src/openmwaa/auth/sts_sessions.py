"""Temporary credentials issued by AssumeRole, kept across restarts.

A session is an ``ASIA...`` access key id, a secret (stored Fernet-encrypted: SigV4 needs it
back) and an opaque session token. Only the token's SHA-256 is stored: the token is 96
random bytes, so a plain hash cannot be reversed or guessed, and it is compared in constant
time. Sessions live in ``<data_dir>/sessions.json`` (mode 0600); expired ones are dropped
when new ones are written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.files import write_private_file
from openmwaa.errors import ExpiredTokenError, UnrecognizedClientError

log = logging.getLogger(__name__)

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
MAX_SESSIONS = 100_000


def generate_access_key_id(prefix: str) -> str:
    """``AKIA``/``ASIA`` + 16 upper-case letters and digits, as AWS shapes them."""
    return prefix + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def generate_secret_access_key() -> str:
    """40 characters of ``[A-Za-z0-9+/]``, as AWS shapes them."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    token_sha256: str = field(repr=False)
    role_name: str
    session_name: str
    #: ARN of whoever called AssumeRole (for the audit trail).
    source_arn: str
    issued_at: float
    expires_at: float


@dataclass(frozen=True)
class IssuedSession:
    session: Session
    session_token: str = field(repr=False)


class StsSessionStore:
    """Issued sessions by access key id, persisted encrypted in one file."""

    def __init__(self, path: Path, box: SecretBox) -> None:
        self._path = path
        self._box = box
        self._lock = threading.Lock()
        #: Encrypted secrets as stored, so a write does not re-encrypt every live session.
        self._sealed: dict[str, str] = {}
        self._sessions: dict[str, Session] = self._load()

    def __repr__(self) -> str:
        return f"StsSessionStore({str(self._path)!r}, sessions={len(self._sessions)})"

    def issue(
        self, *, role_name: str, session_name: str, source_arn: str, duration: int, now: float
    ) -> IssuedSession:
        token = secrets.token_urlsafe(96)
        session = Session(
            access_key_id=generate_access_key_id("ASIA"),
            secret_access_key=generate_secret_access_key(),
            token_sha256=_token_digest(token),
            role_name=role_name,
            session_name=session_name,
            source_arn=source_arn,
            issued_at=now,
            expires_at=now + duration,
        )
        with self._lock:
            live = {k: s for k, s in self._sessions.items() if s.expires_at > now}
            if len(live) >= MAX_SESSIONS:
                oldest = min(live.values(), key=lambda s: s.issued_at)
                del live[oldest.access_key_id]
            live[session.access_key_id] = session
            self._sealed[session.access_key_id] = self._box.encrypt(session.secret_access_key)
            self._sealed = {k: v for k, v in self._sealed.items() if k in live}
            self._save(live)
            self._sessions = live
        return IssuedSession(session=session, session_token=token)

    def has(self, access_key_id: str) -> bool:
        return access_key_id in self._sessions

    def verify(self, access_key_id: str, session_token: str | None, now: float) -> Session:
        """The session for this key and token; UnrecognizedClientError or ExpiredTokenError otherwise."""
        session = self._sessions.get(access_key_id)
        presented = _token_digest(session_token or "")
        # Compare even when the key is unknown so timing does not tell the two cases apart.
        expected = session.token_sha256 if session is not None else _token_digest("\0")
        if session is None or session_token is None or not hmac.compare_digest(presented, expected):
            raise UnrecognizedClientError()
        if now >= session.expires_at:
            raise ExpiredTokenError()
        return session

    def _load(self) -> dict[str, Session]:
        if not self._path.exists():
            return {}
        try:
            raw = json.loads(self._path.read_text("utf-8"))
            entries = raw["sessions"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s is not readable; starting without earlier sessions", self._path)
            return {}
        out: dict[str, Session] = {}
        for entry in entries if isinstance(entries, list) else []:
            session = self._decode(entry)
            if session is not None:
                out[session.access_key_id] = session
        return out

    def _decode(self, entry: Any) -> Session | None:
        try:
            session = Session(
                access_key_id=str(entry["access_key_id"]),
                secret_access_key=self._box.decrypt(str(entry["secret_encrypted"])),
                token_sha256=str(entry["token_sha256"]),
                role_name=str(entry["role_name"]),
                session_name=str(entry["session_name"]),
                source_arn=str(entry["source_arn"]),
                issued_at=float(entry["issued_at"]),
                expires_at=float(entry["expires_at"]),
            )
        except (KeyError, TypeError, ValueError):
            # A damaged entry, or one sealed with another master key: it cannot be used.
            log.warning("skipping an unreadable session in %s", self._path)
            return None
        self._sealed[session.access_key_id] = str(entry["secret_encrypted"])
        return session

    def _save(self, sessions: dict[str, Session]) -> None:
        entries = [
            {
                "access_key_id": s.access_key_id,
                "secret_encrypted": self._sealed[s.access_key_id],
                "token_sha256": s.token_sha256,
                "role_name": s.role_name,
                "session_name": s.session_name,
                "source_arn": s.source_arn,
                "issued_at": s.issued_at,
                "expires_at": s.expires_at,
            }
            for s in sessions.values()
        ]
        write_private_file(self._path, json.dumps({"version": 1, "sessions": entries}).encode())
