"""Edits of the identities file for ``openmwaa iam ...``: read, change, validate, write atomically.

Every edit holds a lock on the file, applies the change to the document as written,
validates the whole result with the same parser the server uses, and only then replaces
the file, so a failed edit leaves the file as it was. New secrets are stored encrypted.
YAML comments in the file are not preserved by an edit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.files import locked, write_private_file
from openmwaa.auth.identities_file import (
    DEFAULT_MAX_SESSION,
    Identities,
    dump_raw,
    parse_identities,
    read_raw,
)
from openmwaa.auth.sts_sessions import generate_access_key_id, generate_secret_access_key
from openmwaa.errors import ResourceNotFoundError, ValidationError

Document = Mapping[str, Any]


@dataclass(frozen=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)


class IdentitiesEditor:
    """Changes to one identities file, each validated in full before it is written."""

    def __init__(self, path: Path, *, account_id: str, box: SecretBox) -> None:
        self.path = path
        self.account_id = account_id
        self.box = box

    def load(self) -> Identities:
        return parse_identities(
            read_raw(self.path), account_id=self.account_id, source=str(self.path), box=self.box
        )

    def edit(self, change: Callable[[dict[str, Any]], None]) -> Identities:
        """Apply ``change`` to the raw document; write it only if the result is valid."""
        with locked(self.path):
            raw = read_raw(self.path)
            change(raw)
            identities = parse_identities(
                raw, account_id=self.account_id, source=str(self.path), box=self.box
            )
            write_private_file(self.path, dump_raw(self.path, raw))
        return identities

    # Users -------------------------------------------------------------------------------

    def add_user(self, name: str) -> None:
        def change(raw: dict[str, Any]) -> None:
            if _find(raw, "users", name) is not None:
                raise ValidationError(f"user {name!r} already exists")
            raw.setdefault("users", []).append({"name": name, "access_keys": [], "policies": []})

        self.edit(change)

    def create_access_key(
        self, user: str, *, access_key_id: str | None = None, secret: str | None = None
    ) -> NewAccessKey:
        """A new key for ``user`` (generated unless given); only its encrypted secret is written."""
        key = NewAccessKey(
            access_key_id=access_key_id or generate_access_key_id("AKIA"),
            secret_access_key=secret or generate_secret_access_key(),
        )

        def change(raw: dict[str, Any]) -> None:
            entry = _require(raw, "users", user)
            sealed = self.box.encrypt(key.secret_access_key)
            entry.setdefault("access_keys", []).append({"id": key.access_key_id, "secret_encrypted": sealed})

        self.edit(change)
        return key

    def put_user_policy(self, user: str, policy_name: str, document: Document | str) -> None:
        self.edit(lambda raw: _put_policy(_require(raw, "users", user), policy_name, document))

    # Roles -------------------------------------------------------------------------------

    def create_role(
        self, name: str, trust_policy: Document | str, *, max_session_duration: int = DEFAULT_MAX_SESSION
    ) -> None:
        def change(raw: dict[str, Any]) -> None:
            if _find(raw, "roles", name) is not None:
                raise ValidationError(f"role {name!r} already exists")
            raw.setdefault("roles", []).append(
                {
                    "name": name,
                    "trust_policy": _as_document(trust_policy),
                    "policies": [],
                    "max_session_duration": max_session_duration,
                }
            )

        self.edit(change)

    def put_role_policy(self, role: str, policy_name: str, document: Document | str) -> None:
        self.edit(lambda raw: _put_policy(_require(raw, "roles", role), policy_name, document))

    # Listing -----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Users (with key ids, never secrets), roles and policy names, for display."""
        identities = self.load()
        return {
            "users": [
                {
                    "name": u.name,
                    "arn": u.arn,
                    "access_keys": [{"id": k.access_key_id, "active": k.active} for k in u.access_keys],
                    "policies": [p.name for p in u.policies],
                }
                for u in identities.users.values()
            ],
            "roles": [
                {
                    "name": r.name,
                    "arn": r.arn,
                    "max_session_duration": r.max_session_duration,
                    "policies": [p.name for p in r.policies],
                }
                for r in identities.roles.values()
            ],
        }


def _find(raw: Mapping[str, Any], section: str, name: str) -> dict[str, Any] | None:
    entries = raw.get(section) or []
    if not isinstance(entries, list):
        raise ValidationError(f"{section} must be a list")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def _require(raw: Mapping[str, Any], section: str, name: str) -> dict[str, Any]:
    entry = _find(raw, section, name)
    if entry is None:
        raise ResourceNotFoundError(f"{section[:-1]} {name!r} does not exist")
    return entry


def _as_document(document: Document | str) -> Any:
    if isinstance(document, str):
        try:
            return json.loads(document)
        except ValueError as exc:
            raise ValidationError(f"the policy is not valid JSON: {exc}") from exc
    return dict(document)


def _put_policy(entry: dict[str, Any], policy_name: str, document: Document | str) -> None:
    """Add or replace the named inline policy (as IAM's Put*Policy does)."""
    policies = [
        p for p in entry.get("policies") or [] if not (isinstance(p, dict) and p.get("name") == policy_name)
    ]
    policies.append({"name": policy_name, "document": _as_document(document)})
    entry["policies"] = policies
