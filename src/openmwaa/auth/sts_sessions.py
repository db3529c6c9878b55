"""Temporary credentials issued by AssumeRole, kept across restarts.

A session is an ``ASIA...`` access key id, a secret (stored Fernet-encrypted: SigV4 needs it
back) and an opaque session token. Only the token's SHA-256 is stored: the token is 96
random bytes, so a plain hash cannot be reversed or guessed, and it is compared in constant
time.

Storage is a snapshot plus a journal, both mode 0600: ``<data_dir>/sessions.json`` holds the
sessions as of the last compaction, ``sessions.json.journal`` one JSON line per change since
(a session issued, a session dropped to stay under :data:`MAX_SESSIONS`), each appended and
fsynced on its own, so an AssumeRole writes one line however many sessions there are. Once the
journal holds as many lines as the snapshot holds sessions (and at least
:data:`COMPACT_MIN_LINES`), the live sessions are written as a new snapshot, expired ones left
out, and the journal starts again: a compaction rewrites at most the snapshot plus the journal,
which the appends since the last one have paid for, so the cost per call stays constant. Loading
replays the journal over the snapshot and stops at a torn last line (a crash mid-append).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.files import PRIVATE_MODE, write_private_file
from openmwaa.errors import ExpiredTokenError, UnrecognizedClientError

log = logging.getLogger(__name__)

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
MAX_SESSIONS = 100_000
#: The journal is compacted once it has this many lines, and as many as the snapshot has sessions.
COMPACT_MIN_LINES = 1024


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
    """Issued sessions by access key id, in memory, persisted encrypted as a snapshot and a journal."""

    def __init__(self, path: Path, box: SecretBox) -> None:
        self._path = path
        self._journal = path.with_name(path.name + ".journal")
        self._box = box
        self._lock = threading.Lock()
        #: Encrypted secrets as stored, so a compaction does not re-encrypt every live session.
        self._sealed: dict[str, str] = {}
        #: In the order issued (dicts keep insertion order): the first is the oldest.
        self._sessions: dict[str, Session] = {}
        self._journal_lines = 0
        self._snapshot_size = 0
        self._load()

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
        sealed = self._box.encrypt(session.secret_access_key)
        with self._lock:
            records: list[dict[str, Any]] = []
            # The oldest issued goes first; expired ones are dropped at each compaction.
            oldest = next(iter(self._sessions)) if len(self._sessions) >= MAX_SESSIONS else None
            if oldest is not None:
                records.append({"drop": oldest})
            records.append({"issue": self._entry(session, sealed)})
            self._append(records)  # first: a session that is not on disk is never handed out
            if oldest is not None:
                self._forget(oldest)
            self._sessions[session.access_key_id] = session
            self._sealed[session.access_key_id] = sealed
            if self._journal_lines >= max(COMPACT_MIN_LINES, self._snapshot_size):
                try:
                    self._compact(now)
                except OSError as exc:  # the journal still has everything: try again next time
                    log.error("could not compact %s: %s", self._journal, exc)
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

    # Persistence ---------------------------------------------------------------------------

    def _forget(self, access_key_id: str) -> None:
        self._sessions.pop(access_key_id, None)
        self._sealed.pop(access_key_id, None)

    def _append(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)
        self._journal.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_MODE)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._journal_lines += len(records)

    def _compact(self, now: float) -> None:
        """The live sessions as the new snapshot, then an empty journal (a crash in between only
        replays lines the snapshot already holds)."""
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            self._forget(key)
        entries = [self._entry(s, self._sealed[s.access_key_id]) for s in self._sessions.values()]
        write_private_file(self._path, json.dumps({"version": 1, "sessions": entries}).encode())
        fd = os.open(self._journal, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, PRIVATE_MODE)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._journal_lines = 0
        self._snapshot_size = len(entries)

    def _load(self) -> None:
        snapshot = self._read_snapshot()
        self._snapshot_size = len(snapshot)
        for entry in snapshot:
            self._add(entry)
        for record in self._read_journal():
            if isinstance(record.get("drop"), str):
                self._forget(record["drop"])
            elif "issue" in record:
                self._add(record["issue"])
        while len(self._sessions) > MAX_SESSIONS:
            self._forget(next(iter(self._sessions)))

    def _read_snapshot(self) -> list[Any]:
        if not self._path.exists():
            return []
        try:
            raw = json.loads(self._path.read_text("utf-8"))
            entries = raw["sessions"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s is not readable; starting without earlier sessions", self._path)
            return []
        return entries if isinstance(entries, list) else []

    def _read_journal(self) -> list[dict[str, Any]]:
        try:
            lines = self._journal.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        except OSError:
            log.warning("%s is not readable; sessions issued since the last snapshot are lost", self._journal)
            return []
        records: list[dict[str, Any]] = []
        for line in lines:
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s ends with a torn line (a crash while writing); it is ignored", self._journal)
                break
            if isinstance(record, dict):
                records.append(record)
        self._journal_lines = len(records)
        return records

    def _add(self, entry: Any) -> None:
        session = self._decode(entry)
        if session is not None:
            self._sessions.pop(session.access_key_id, None)  # re-added: keep the order issued
            self._sessions[session.access_key_id] = session

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

    @staticmethod
    def _entry(s: Session, sealed: str) -> dict[str, Any]:
        return {
            "access_key_id": s.access_key_id,
            "secret_encrypted": sealed,
            "token_sha256": s.token_sha256,
            "role_name": s.role_name,
            "session_name": s.session_name,
            "source_arn": s.source_arn,
            "issued_at": s.issued_at,
            "expires_at": s.expires_at,
        }
