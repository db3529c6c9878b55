"""The identities file: IAM users, their access keys, roles and policies of the one account.

The file is YAML (or JSON when it ends in ``.json``)::

    users:
      - name: alice
        access_keys:
          - id: AKIAEXAMPLEEXAMPLE01
            secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY   # or secret_encrypted: gAAAA...
            active: true
        policies: [ {Version: "2012-10-17", Statement: [...]} ]   # or {name: x, document: {...}}
        managed_policies: [ReadOnly]
    roles:
      - name: Admin
        trust_policy: {Version: "2012-10-17", Statement: [...]}
        policies: [...]
        managed_policies: [...]
        max_session_duration: 3600
    managed_policies:
      ReadOnly: {Version: "2012-10-17", Statement: [...]}

Parsing is strict: unknown keys, duplicate names or key ids and invalid policies are
errors that name the file and the entry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from openmwaa.auth.credentials import SecretBox
from openmwaa.errors import ValidationError
from openmwaa.iam.errors import PolicyError
from openmwaa.iam.policy import Policy, PolicyKind, parse_policy

NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
MAX_SECRET_CHARS = 128
MIN_SESSION, MAX_SESSION, DEFAULT_MAX_SESSION = 3600, 43200, 3600
MAX_FILE_BYTES = 4 * 1024 * 1024

_TOP_KEYS = {"users", "roles", "managed_policies"}
_USER_KEYS = {"name", "access_keys", "policies", "managed_policies"}
_KEY_KEYS = {"id", "secret", "secret_encrypted", "active"}
_ROLE_KEYS = {"name", "trust_policy", "policies", "managed_policies", "max_session_duration"}


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    active: bool = True


@dataclass(frozen=True)
class User:
    name: str
    arn: str
    user_id: str
    access_keys: tuple[AccessKey, ...]
    policies: tuple[Policy, ...]


@dataclass(frozen=True)
class Role:
    name: str
    arn: str
    role_id: str
    trust_policy: Policy
    policies: tuple[Policy, ...]
    max_session_duration: int


@dataclass(frozen=True)
class Identities:
    account_id: str
    users: Mapping[str, User] = field(default_factory=dict)
    roles: Mapping[str, Role] = field(default_factory=dict)
    #: access key id -> (user, key)
    keys: Mapping[str, tuple[User, AccessKey]] = field(default_factory=dict)


def stable_id(prefix: str, account_id: str, kind: str, name: str) -> str:
    """An AWS-shaped unique id (``AIDA...``/``AROA...``, 21 chars) derived from the name."""
    digest = hashlib.sha256(f"{account_id}:{kind}:{name}".encode()).digest()
    return prefix + base64.b32encode(digest).decode("ascii")[:17]


def read_raw(path: Path) -> dict[str, Any]:
    """The file's data as written (an empty document when it does not exist)."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(f"{path}: the identities file is larger than {MAX_FILE_BYTES} bytes")
    try:
        raw = json.loads(data) if path.suffix == ".json" else yaml.safe_load(data)
    except ValueError as exc:
        raise ValidationError(f"{path}: not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ValidationError(f"{path}: not valid YAML {_yaml_position(exc)}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationError(
            f"{path}: the identities file must be a mapping with users, roles, managed_policies"
        )
    return raw


def check_secrets_private(path: Path, raw: Mapping[str, Any]) -> None:
    """Refuse plaintext secrets in a file other users may read (as ssh refuses an open private key).

    ``secret_encrypted`` values are sealed with ``master.key`` and may sit in a readable file.
    """
    if not _has_plaintext_secret(raw):
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o044:
        raise ValidationError(
            f"{path} holds plaintext access key secrets and other users may read it (mode {mode:04o}); "
            f"run `chmod 600 {path}`, or add keys with `openmwaa iam` (it stores them encrypted)"
        )


def _has_plaintext_secret(raw: Mapping[str, Any]) -> bool:
    users = raw.get("users")
    for user in users if isinstance(users, list) else ():
        keys = user.get("access_keys") if isinstance(user, dict) else None
        for key in keys if isinstance(keys, list) else ():
            if isinstance(key, dict) and "secret" in key:
                return True
    return False


def _yaml_position(exc: yaml.YAMLError) -> str:
    """Where the YAML error is, without PyYAML's snippet of the file (which may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    if mark is None:
        return f"({problem})"
    return f"at line {mark.line + 1}, column {mark.column + 1} ({problem})"


def dump_raw(path: Path, raw: Mapping[str, Any]) -> bytes:
    if path.suffix == ".json":
        return (json.dumps(raw, indent=2) + "\n").encode()
    return yaml.safe_dump(dict(raw), sort_keys=False, default_flow_style=False).encode()


def parse_identities(raw: Mapping[str, Any], *, account_id: str, source: str, box: SecretBox) -> Identities:
    """Validate ``raw`` (the decoded file) into :class:`Identities`; ValidationError names the entry."""
    _only_keys(raw, _TOP_KEYS, source)
    managed = _parse_managed(raw.get("managed_policies") or {}, source)
    users: dict[str, User] = {}
    keys: dict[str, tuple[User, AccessKey]] = {}
    for index, entry in enumerate(_list(raw.get("users"), f"{source}: users")):
        where = f"{source}: users[{index}]"
        user = _parse_user(entry, where, account_id, managed, box)
        if user.name in users:
            raise ValidationError(f"{where}: duplicate user name {user.name!r}")
        users[user.name] = user
        for key in user.access_keys:
            if key.access_key_id in keys:
                raise ValidationError(f"{where}: access key {key.access_key_id} is used twice")
            keys[key.access_key_id] = (user, key)
    roles: dict[str, Role] = {}
    for index, entry in enumerate(_list(raw.get("roles"), f"{source}: roles")):
        where = f"{source}: roles[{index}]"
        role = _parse_role(entry, where, account_id, managed)
        if role.name in roles:
            raise ValidationError(f"{where}: duplicate role name {role.name!r}")
        roles[role.name] = role
    return Identities(account_id=account_id, users=users, roles=roles, keys=keys)


def _parse_managed(raw: Any, source: str) -> dict[str, Policy]:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{source}: managed_policies must be a mapping of name to policy document")
    return {
        _name(name, f"{source}: managed_policies"): _policy(doc, name, f"{source}: managed_policies.{name}")
        for name, doc in raw.items()
    }


def _parse_user(
    entry: Any, where: str, account_id: str, managed: Mapping[str, Policy], box: SecretBox
) -> User:
    entry = _mapping(entry, where)
    _only_keys(entry, _USER_KEYS, where)
    name = _name(entry.get("name"), where)
    where = f"{where} (user {name})"
    keys = tuple(
        _parse_key(raw_key, f"{where}: access_keys[{i}]", box)
        for i, raw_key in enumerate(_list(entry.get("access_keys"), f"{where}: access_keys"))
    )
    policies = _policies(entry, where, f"user/{name}", managed)
    return User(
        name=name,
        arn=f"arn:aws:iam::{account_id}:user/{name}",
        user_id=stable_id("AIDA", account_id, "user", name),
        access_keys=keys,
        policies=policies,
    )


def _parse_key(entry: Any, where: str, box: SecretBox) -> AccessKey:
    entry = _mapping(entry, where)
    _only_keys(entry, _KEY_KEYS, where)
    key_id = entry.get("id")
    if not isinstance(key_id, str) or not ACCESS_KEY_ID.fullmatch(key_id):
        raise ValidationError(f"{where}: id must be 16 to 128 upper-case letters and digits")
    if ("secret" in entry) == ("secret_encrypted" in entry):
        raise ValidationError(f"{where}: give exactly one of secret, secret_encrypted")
    if "secret" in entry:
        secret = entry["secret"]
    else:
        try:
            secret = box.decrypt(str(entry["secret_encrypted"]))
        except ValueError as exc:
            raise ValidationError(
                f"{where}: secret_encrypted cannot be decrypted with this master.key"
            ) from exc
    if not isinstance(secret, str) or not 0 < len(secret) <= MAX_SECRET_CHARS or not secret.isprintable():
        raise ValidationError(f"{where}: the secret must be 1 to {MAX_SECRET_CHARS} printable characters")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise ValidationError(f"{where}: active must be true or false")
    return AccessKey(access_key_id=key_id, secret_access_key=secret, active=active)


def _parse_role(entry: Any, where: str, account_id: str, managed: Mapping[str, Policy]) -> Role:
    entry = _mapping(entry, where)
    _only_keys(entry, _ROLE_KEYS, where)
    name = _name(entry.get("name"), where)
    where = f"{where} (role {name})"
    if "trust_policy" not in entry:
        raise ValidationError(f"{where}: trust_policy is required")
    trust = _policy(entry["trust_policy"], f"role/{name}/trust", f"{where}: trust_policy", kind="trust")
    duration = entry.get("max_session_duration", DEFAULT_MAX_SESSION)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or not MIN_SESSION <= duration <= MAX_SESSION
    ):
        raise ValidationError(f"{where}: max_session_duration must be {MIN_SESSION} to {MAX_SESSION} seconds")
    return Role(
        name=name,
        arn=f"arn:aws:iam::{account_id}:role/{name}",
        role_id=stable_id("AROA", account_id, "role", name),
        trust_policy=trust,
        policies=_policies(entry, where, f"role/{name}", managed),
        max_session_duration=duration,
    )


def _policies(
    entry: Mapping[str, Any], where: str, owner: str, managed: Mapping[str, Policy]
) -> tuple[Policy, ...]:
    out: list[Policy] = []
    for index, item in enumerate(_list(entry.get("policies"), f"{where}: policies")):
        item_where = f"{where}: policies[{index}]"
        if isinstance(item, Mapping) and "document" in item:
            _only_keys(item, {"name", "document"}, item_where)
            label = _name(item.get("name"), item_where)
            out.append(_policy(item["document"], f"{owner}/{label}", item_where))
        else:
            out.append(_policy(item, f"{owner}/inline-{index}", item_where))
    for name in _list(entry.get("managed_policies"), f"{where}: managed_policies"):
        if not isinstance(name, str) or name not in managed:
            raise ValidationError(f"{where}: managed policy {name!r} is not defined under managed_policies")
        out.append(managed[name])
    return tuple(out)


def _policy(document: Any, name: str, where: str, kind: PolicyKind = "identity") -> Policy:
    if not isinstance(document, (str, Mapping)):
        raise ValidationError(f"{where}: a policy must be a JSON string or a mapping")
    try:
        return parse_policy(document, name=name, kind=kind)
    except PolicyError as exc:
        raise ValidationError(f"{where}: {exc.message}") from exc


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValidationError(f"{where}: name must be 1 to 64 characters of letters, digits and +=,.@_-")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{where}: expected a list")
    return value


def _only_keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise ValidationError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
