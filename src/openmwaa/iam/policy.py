"""The policy model and its strict parser.

``parse_policy`` accepts a JSON text or an already-decoded mapping (e.g. from YAML) and
either returns a fully compiled, frozen :class:`Policy` or raises :class:`PolicyError`.
Unknown fields, duplicate keys, wrong types, unknown condition operators and oversized
documents are all rejected: an engine that guesses is an engine that allows by accident.

Two kinds of policy exist: ``identity`` policies (Action + Resource, no Principal) and
role ``trust`` policies (Action + Principal, no Resource), mirroring what IAM accepts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openmwaa.iam.conditions import Condition, parse_condition
from openmwaa.iam.errors import PolicyError
from openmwaa.iam.matching import ActionPattern, ArnPattern, Lookup
from openmwaa.strict_json import loads_strict

PolicyKind = Literal["identity", "trust"]
Effect = Literal["Allow", "Deny"]

VERSIONS = ("2012-10-17", "2008-10-17")
MAX_DOCUMENT_CHARS = 131_072
MAX_STATEMENTS = 1_000
MAX_LIST_ITEMS = 1_000
MAX_STRING_CHARS = 2_048
MAX_CONDITIONS = 256

_SID = re.compile(r"[A-Za-z0-9]{1,128}")
_ACCOUNT = re.compile(r"\d{12}")
_AWS_PRINCIPAL_ARN = re.compile(
    r"arn:[a-z-]{1,20}:iam::\d{12}:(root|user/[\w+=,.@/-]{1,512}|role/[\w+=,.@/-]{1,512})"
    r"|arn:[a-z-]{1,20}:sts::\d{12}:assumed-role/[\w+=,.@-]{1,64}/[\w+=,.@-]{1,64}"
)
_PRINCIPAL_TYPES = {
    "AWS": "aws",
    "Service": "service",
    "Federated": "federated",
    "CanonicalUser": "canonical_user",
}
_TOP_KEYS = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
}
_STATEMENT_KEYS |= {"Condition"}


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """A Principal / NotPrincipal element. ``anyone`` is the bare ``"*"``."""

    anyone: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Statement:
    index: int
    sid: str | None
    effect: Effect
    actions: tuple[ActionPattern, ...]
    not_action: bool
    resources: tuple[ArnPattern, ...]
    not_resource: bool
    principal: PrincipalSpec | None
    not_principal: bool
    conditions: tuple[Condition, ...]
    #: The statement as written, as indented JSON (for the simulator).
    source: str = field(repr=False, compare=False)
    # Derived once, for speed: exact actions as a set, the wildcard ones, and "any" flags.
    _exact_actions: frozenset[str] = field(init=False, repr=False, compare=False)
    _wild_actions: tuple[ActionPattern, ...] = field(init=False, repr=False, compare=False)
    _any_resource: bool = field(init=False, repr=False, compare=False)
    _any_action: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact = frozenset(a.exact for a in self.actions if a.exact is not None)
        object.__setattr__(self, "_exact_actions", exact)
        object.__setattr__(self, "_wild_actions", tuple(a for a in self.actions if a.exact is None))
        object.__setattr__(self, "_any_resource", any(r.any for r in self.resources))
        object.__setattr__(self, "_any_action", any(a.text == "*" for a in self.actions))

    @property
    def label(self) -> str:
        return self.sid if self.sid is not None else f"#{self.index}"

    def applies_to_action(self, action: str, service: str, name: str) -> bool:
        """``action`` is the lower-cased ``service:name``; honours NotAction."""
        matched = self._any_action or action in self._exact_actions
        if not matched:
            for pattern in self._wild_actions:
                if pattern.match(service, name):
                    matched = True
                    break
        return matched != self.not_action

    def applies_to_resource(self, resource: str, fields: tuple[str, ...] | None, lookup: Lookup) -> bool:
        """Honours NotResource; may raise UnresolvedVariable."""
        matched = self._any_resource
        if not matched:
            for pattern in self.resources:
                if pattern.match(resource, fields, lookup):
                    matched = True
                    break
        return matched != self.not_resource


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str
    kind: PolicyKind
    statements: tuple[Statement, ...]
    id: str | None = None


def parse_policy(document: str | Mapping[str, Any], *, name: str, kind: PolicyKind = "identity") -> Policy:
    """Parse and compile one policy document; raise PolicyError when it is not valid."""
    if not isinstance(name, str) or not 0 < len(name) <= 128:
        raise PolicyError("Policy name must be 1 to 128 characters")
    data = _decode(document)
    where = f"policy {name!r}"
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: the document must be a JSON object")
    _only_keys(data, _TOP_KEYS, where)
    version = data.get("Version", "2008-10-17")
    if isinstance(version, dt.date):  # YAML reads an unquoted 2012-10-17 as a date
        version = version.isoformat()
    if version not in VERSIONS:
        raise PolicyError(f"{where}: Version must be one of {', '.join(VERSIONS)}")
    policy_id = data.get("Id")
    if policy_id is not None:
        _string(policy_id, f"{where}: Id")
    raw_statements = data.get("Statement")
    if isinstance(raw_statements, Mapping):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise PolicyError(f"{where}: Statement must be an object or a non-empty list of objects")
    if len(raw_statements) > MAX_STATEMENTS:
        raise PolicyError(f"{where}: more than {MAX_STATEMENTS} statements")
    statements = []
    seen_sids: set[str] = set()
    for index, raw in enumerate(raw_statements):
        statement = _parse_statement(raw, index, kind, variables=version == "2012-10-17", where=where)
        if statement.sid is not None:
            if statement.sid in seen_sids:
                raise PolicyError(f"{where}: duplicate Sid {statement.sid!r}")
            seen_sids.add(statement.sid)
        statements.append(statement)
    return Policy(name=name, version=version, kind=kind, statements=tuple(statements), id=policy_id)


def _decode(document: str | Mapping[str, Any]) -> Any:
    if isinstance(document, str):
        if len(document) > MAX_DOCUMENT_CHARS:
            raise PolicyError(f"Policy document exceeds {MAX_DOCUMENT_CHARS} characters")
        try:
            return loads_strict(document)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(f"Policy document is not valid JSON: {exc}") from None
    if not isinstance(document, Mapping):
        raise PolicyError("Policy document must be a JSON text or a mapping")
    try:
        size = len(json.dumps(document, default=str))
    except (TypeError, ValueError, RecursionError):
        raise PolicyError("Policy document holds values that are not JSON") from None
    if size > MAX_DOCUMENT_CHARS:
        raise PolicyError(f"Policy document exceeds {MAX_DOCUMENT_CHARS} characters")
    return document


def _parse_statement(raw: Any, index: int, kind: PolicyKind, *, variables: bool, where: str) -> Statement:
    here = f"{where}, statement {index}"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{here}: a statement must be an object")
    _only_keys(raw, _STATEMENT_KEYS, here)
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or not _SID.fullmatch(sid)):
        raise PolicyError(f"{here}: Sid must be 1 to 128 letters and digits")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{here}: Effect must be Allow or Deny")
    action_key = _exactly_one(raw, "Action", "NotAction", here)
    actions = tuple(ActionPattern.parse(a) for a in _strings(raw[action_key], f"{here}: {action_key}"))
    resources: tuple[ArnPattern, ...] = ()
    not_resource = False
    principal: PrincipalSpec | None = None
    not_principal = False
    if kind == "identity":
        if "Principal" in raw or "NotPrincipal" in raw:
            raise PolicyError(f"{here}: an identity policy must not name a Principal")
        resource_key = _exactly_one(raw, "Resource", "NotResource", here)
        not_resource = resource_key == "NotResource"
        resources = tuple(
            ArnPattern.parse(r, variables=variables)
            for r in _strings(raw[resource_key], f"{here}: {resource_key}")
        )
    else:
        if "Resource" in raw or "NotResource" in raw:
            raise PolicyError(f"{here}: a trust policy must not name a Resource")
        principal_key = _exactly_one(raw, "Principal", "NotPrincipal", here)
        not_principal = principal_key == "NotPrincipal"
        if not_principal and effect == "Allow":
            raise PolicyError(f"{here}: NotPrincipal is only supported with Effect Deny")
        principal = _parse_principal(raw[principal_key], f"{here}: {principal_key}")
    conditions = _parse_conditions(raw.get("Condition"), here, variables=variables)
    return Statement(
        index=index,
        sid=sid,
        effect=effect,
        actions=actions,
        not_action=action_key == "NotAction",
        resources=resources,
        not_resource=not_resource,
        principal=principal,
        not_principal=not_principal,
        conditions=conditions,
        source=json.dumps(raw, indent=2, default=str),
    )


def _parse_principal(raw: Any, here: str) -> PrincipalSpec:
    if raw == "*":
        return PrincipalSpec(anyone=True)
    if not isinstance(raw, Mapping) or not raw:
        raise PolicyError(f"{here}: must be '*' or an object such as {{\"AWS\": ...}}")
    _only_keys(raw, set(_PRINCIPAL_TYPES), here)
    found: dict[str, tuple[str, ...]] = {}
    for key, attr in _PRINCIPAL_TYPES.items():
        if key in raw:
            found[attr] = _strings(raw[key], f"{here}: {key}")
    for value in found.get("aws", ()):
        if value != "*" and not _ACCOUNT.fullmatch(value) and not _AWS_PRINCIPAL_ARN.fullmatch(value):
            raise PolicyError(f"{here}: invalid AWS principal {value!r}")
    return PrincipalSpec(
        aws=found.get("aws", ()),
        service=found.get("service", ()),
        federated=found.get("federated", ()),
        canonical_user=found.get("canonical_user", ()),
    )


def _parse_conditions(raw: Any, here: str, *, variables: bool) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{here}: Condition must be an object")
    conditions: list[Condition] = []
    for operator, block in raw.items():
        if not isinstance(operator, str) or not isinstance(block, Mapping) or not block:
            raise PolicyError(f"{here}: Condition operator {operator!r} must map to a non-empty object")
        for key, values in block.items():
            if not isinstance(key, str) or ":" not in key or not 0 < len(key) <= 256:
                raise PolicyError(f"{here}: invalid condition key {key!r}")
            texts = _condition_values(values, f"{here}: Condition {operator} {key}")
            conditions.append(parse_condition(operator, key, texts, variables=variables))
            if len(conditions) > MAX_CONDITIONS:
                raise PolicyError(f"{here}: more than {MAX_CONDITIONS} conditions")
    return tuple(conditions)


def _condition_values(raw: Any, here: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_LIST_ITEMS:
        raise PolicyError(f"{here}: needs 1 to {MAX_LIST_ITEMS} values")
    out = []
    for item in items:
        text = ("true" if item else "false") if isinstance(item, bool) else item
        if isinstance(text, int | float):
            text = str(text)
        out.append(_string(text, here, min_chars=0))
    return tuple(out)


def _only_keys(raw: Mapping[Any, Any], allowed: set[str], here: str) -> None:
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise PolicyError(f"{here}: unknown field(s) {', '.join(repr(k) for k in unknown)}")


def _exactly_one(raw: Mapping[str, Any], first: str, second: str, here: str) -> str:
    if (first in raw) == (second in raw):
        raise PolicyError(f"{here}: exactly one of {first} and {second} is required")
    return first if first in raw else second


def _strings(raw: Any, here: str) -> tuple[str, ...]:
    items: Sequence[Any] = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_LIST_ITEMS:
        raise PolicyError(f"{here}: needs 1 to {MAX_LIST_ITEMS} entries")
    return tuple(_string(item, here) for item in items)


def _string(raw: Any, here: str, *, min_chars: int = 1) -> str:
    if not isinstance(raw, str) or not min_chars <= len(raw) <= MAX_STRING_CHARS:
        raise PolicyError(f"{here}: expected a string of {min_chars} to {MAX_STRING_CHARS} characters")
    return raw
