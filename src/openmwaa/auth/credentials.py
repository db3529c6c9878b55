"""Credential lookup (the interface SigV4 verification uses) and encryption of secrets at rest.

SigV4 needs the plaintext secret to recompute the HMAC, so secrets cannot be hashed one
way. They are kept encrypted with a Fernet key stored in ``<data_dir>/master.key`` (mode
0600) and decrypted only in memory. Other keys (the web and CLI token signing key) are derived
from that one key (:meth:`SecretBox.derive_key`), so there is one secret file to protect, back
up or lose.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openmwaa.auth.files import PRIVATE_MODE, check_private_file
from openmwaa.errors import ValidationError
from openmwaa.iam.policy import Policy
from openmwaa.principal import Principal

MASTER_KEY_FILE = "master.key"


@dataclass(frozen=True)
class ResolvedCredential:
    """What an access key id resolves to: the secret to verify with, who it is, what it may do."""

    secret_access_key: str = field(repr=False)
    principal: Principal
    policies: Sequence[Policy] = ()


class CredentialLookup(Protocol):
    def lookup(self, access_key_id: str, session_token: str | None, now: float) -> ResolvedCredential:
        """Resolve a key; raise UnrecognizedClientError (unknown key, bad token) or ExpiredTokenError."""


class SecretBox:
    """Symmetric encryption of secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = base64.urlsafe_b64decode(key)

    @classmethod
    def open(cls, data_dir: Path) -> SecretBox:
        """The box keyed by ``<data_dir>/master.key``, creating the key on first use."""
        return cls(load_or_create_master_key(data_dir / MASTER_KEY_FILE))

    def derive_key(self, label: str) -> bytes:
        """32 bytes for one purpose only, from the master key (HKDF-SHA256, ``info`` = the label)."""
        if not label:
            raise ValueError("a derived key needs a label")
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"openmwaa/{label}".encode())
        return hkdf.derive(self._key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext; ValueError when the token was not made with this key or was altered."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise ValueError("cannot decrypt: wrong master key or damaged value") from exc

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def load_or_create_master_key(path: Path) -> bytes:
    """Read the Fernet key at ``path`` (which must be 0600), or create it exclusively."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
    check_private_file(path)
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError as exc:
        raise ValidationError(f"{path} does not hold a valid key (32 url-safe base64-encoded bytes)") from exc
    return key
