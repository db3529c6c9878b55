"""The in-memory identity store: resolves access keys and session tokens to principals and policies.

The identities file is re-read when it changes (its mtime, size or inode), checked at most
once per ``check_interval`` seconds so a busy server pays one ``stat`` per second. A file
that becomes invalid while running is reported and ignored: the last good version stays in
force, so a typo does not lock everyone out (or let everyone in).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from openmwaa.auth.credentials import ResolvedCredential, SecretBox
from openmwaa.auth.identities_file import Identities, Role, check_secrets_private, parse_identities, read_raw
from openmwaa.auth.sts_sessions import Session, StsSessionStore
from openmwaa.errors import UnrecognizedClientError, ValidationError
from openmwaa.iam.policy import Policy
from openmwaa.principal import Principal

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int] | None


class IdentityStore:
    """A ``CredentialLookup`` over the identities file and the STS sessions."""

    def __init__(
        self,
        path: Path,
        *,
        account_id: str,
        box: SecretBox,
        sessions: StsSessionStore,
        check_interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.account_id = account_id
        self.sessions = sessions
        self._box = box
        self._check_interval = check_interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._stamp: _Stamp = self._stat()
        self._identities = self._parse()  # the first load must succeed: fail fast at start-up
        self._checked_at = monotonic()

    def __repr__(self) -> str:
        return f"IdentityStore({str(self.path)!r})"

    # Loading -----------------------------------------------------------------------------

    def identities(self) -> Identities:
        """The current identities, re-read if the file changed since the last check."""
        now = self._monotonic()
        if now - self._checked_at < self._check_interval:
            return self._identities
        with self._lock:
            if now - self._checked_at >= self._check_interval:
                self._checked_at = now
                stamp = self._stat()
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self._identities = self._parse()
                        log.info("reloaded identities from %s", self.path)
                    except (ValidationError, OSError) as exc:
                        log.error("keeping the previous identities: %s", getattr(exc, "message", exc))
        return self._identities

    def _stat(self) -> _Stamp:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _parse(self) -> Identities:
        raw = read_raw(self.path)
        if raw:
            check_secrets_private(self.path, raw)
        return parse_identities(raw, account_id=self.account_id, source=str(self.path), box=self._box)

    # CredentialLookup --------------------------------------------------------------------

    def lookup(self, access_key_id: str, session_token: str | None, now: float) -> ResolvedCredential:
        identities = self.identities()
        if self.sessions.has(access_key_id):
            session = self.sessions.verify(access_key_id, session_token, now)
            role = identities.roles.get(session.role_name)
            if role is None:  # the role was deleted: its sessions die with it
                raise UnrecognizedClientError()
            return ResolvedCredential(
                secret_access_key=session.secret_access_key,
                principal=session_principal(role, session, self.account_id),
                policies=role.policies,
            )
        found = identities.keys.get(access_key_id)
        # A session token sent with a long-term key is invalid, as in AWS.
        if found is None or session_token is not None or not found[1].active:
            raise UnrecognizedClientError()
        user, key = found
        principal = Principal(
            arn=user.arn,
            account_id=self.account_id,
            kind="user",
            user_id=user.user_id,
            name=user.name,
            session_name=None,
            access_key_id=key.access_key_id,
        )
        return ResolvedCredential(
            secret_access_key=key.secret_access_key, principal=principal, policies=user.policies
        )

    # Queries -----------------------------------------------------------------------------

    def policies_for(self, principal: Principal) -> Sequence[Policy]:
        """The identity policies in force for ``principal`` now (none if it no longer exists)."""
        identities = self.identities()
        if principal.kind == "user":
            user = identities.users.get(principal.name)
            return user.policies if user is not None else ()
        if principal.kind == "assumed-role":
            role = identities.roles.get(principal.name)
            return role.policies if role is not None else ()
        return ()

    def role_by_arn(self, arn: str) -> Role | None:
        prefix = f"arn:aws:iam::{self.account_id}:role/"
        if not arn.startswith(prefix):
            return None
        role = self.identities().roles.get(arn[len(prefix) :])
        return role if role is not None and role.arn == arn else None


def session_principal(role: Role, session: Session, account_id: str) -> Principal:
    return Principal(
        arn=f"arn:aws:sts::{account_id}:assumed-role/{role.name}/{session.session_name}",
        account_id=account_id,
        kind="assumed-role",
        user_id=f"{role.role_id}:{session.session_name}",
        name=role.name,
        session_name=session.session_name,
        access_key_id=session.access_key_id,
    )
