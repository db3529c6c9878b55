"""Condition operators: a registry of base operators plus the IfExists / ForAnyValue / ForAllValues forms.

AWS semantics implemented here (``IAM JSON policy elements: Condition operators``):

* a key missing from the request makes positive operators false and negated operators
  (``StringNotEquals``, ``NotIpAddress``, ...) true; ``...IfExists`` makes any operator true;
* ``ForAnyValue`` is false and ``ForAllValues`` true when the key is missing or empty;
* a negated operator holds for a request value that matches *none* of the policy values;
* ``Null`` tests presence only;
* condition keys are case-insensitive, values case-sensitive unless the operator says IgnoreCase.

A multi-valued request value used without a set operator is treated as "any value matches"
for positive operators (and so "no value matches" for negated ones).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from openmwaa.iam.errors import PolicyError
from openmwaa.iam.matching import ArnPattern, Glob, Lookup, split_arn
from openmwaa.iam.variables import Part, has_variables, literal_text, parse_template, resolve

SetOperator = Literal["", "ForAnyValue", "ForAllValues"]
ContextValue = str | tuple[str, ...]


class ValueTest(Protocol):
    def test(self, value: str, lookup: Lookup) -> bool: ...


# --- string -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StringEquals:
    parts: tuple[Part, ...]
    fixed: str | None
    fold: bool

    def test(self, value: str, lookup: Lookup) -> bool:
        expected = self.fixed if self.fixed is not None else literal_text(resolve(self.parts, lookup))
        if self.fold:
            return value.casefold() == expected.casefold()
        return value == expected


@dataclass(frozen=True, slots=True)
class _StringLike:
    parts: tuple[Part, ...]
    glob: Glob | None

    def test(self, value: str, lookup: Lookup) -> bool:
        glob = self.glob if self.glob is not None else Glob.compile(resolve(self.parts, lookup))
        return glob.match(value)


def _string_equals(fold: bool) -> Callable[[str, bool], ValueTest]:
    def prepare(raw: str, variables: bool) -> ValueTest:
        parts = parse_template(raw, variables=variables, wildcards=False)
        fixed = None if has_variables(parts) else literal_text(resolve(parts, _no_lookup))
        if fixed is not None and fold:
            fixed = fixed.casefold()
        return _StringEquals(parts=parts, fixed=fixed, fold=fold)

    return prepare


def _string_like(raw: str, variables: bool) -> ValueTest:
    parts = parse_template(raw, variables=variables, wildcards=True)
    glob = None if has_variables(parts) else Glob.compile(resolve(parts, _no_lookup))
    return _StringLike(parts=parts, glob=glob)


def _no_lookup(key: str) -> str | None:
    return None


# --- ARN ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ArnLike:
    pattern: ArnPattern

    def test(self, value: str, lookup: Lookup) -> bool:
        fields = split_arn(value)
        return fields is not None and self.pattern.match(value, fields, lookup)


def _arn_like(raw: str, variables: bool) -> ValueTest:
    return _ArnLike(ArnPattern.parse(raw, variables=variables))


# --- numbers, dates, booleans, addresses ---------------------------------------------------------

_Compare = Callable[[Any, Any], bool]
_COMPARE: dict[str, _Compare] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}
_NUMBER = re.compile(r"-?\d{1,30}(\.\d{1,30})?")
_EPOCH = re.compile(r"-?\d{1,12}(\.\d{1,9})?")


def parse_number(text: str) -> Decimal | None:
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return None


@functools.lru_cache(maxsize=4096)
def parse_date(text: str) -> datetime | None:
    """ISO 8601 (a date, or a date-time with optional zone; naive means UTC) or epoch seconds."""
    if _EPOCH.fullmatch(text):
        try:
            return datetime.fromtimestamp(float(text), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if len(text) > 40:
        return None
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class _Ordered:
    expected: Any
    compare: _Compare
    parse: Callable[[str], Any]

    def test(self, value: str, lookup: Lookup) -> bool:
        actual = self.parse(value)
        return actual is not None and self.compare(actual, self.expected)


def _ordered(kind: str, parse: Callable[[str], Any], compare: _Compare) -> Callable[[str, bool], ValueTest]:
    def prepare(raw: str, variables: bool) -> ValueTest:
        expected = parse(raw)
        if expected is None:
            raise PolicyError(f"Invalid {kind} condition value {raw!r}")
        return _Ordered(expected=expected, compare=compare, parse=parse)

    return prepare


@dataclass(frozen=True, slots=True)
class _Bool:
    expected: str

    def test(self, value: str, lookup: Lookup) -> bool:
        return value.lower() == self.expected


def _bool(raw: str, variables: bool) -> ValueTest:
    if raw.lower() not in ("true", "false"):
        raise PolicyError(f"Invalid Bool condition value {raw!r}: expected true or false")
    return _Bool(raw.lower())


@dataclass(frozen=True, slots=True)
class _InNetwork:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def test(self, value: str, lookup: Lookup) -> bool:
        address = _parse_address(value)
        return address is not None and address.version == self.network.version and address in self.network


@functools.lru_cache(maxsize=4096)
def _parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: the same few client addresses are parsed over and over.
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _ip(raw: str, variables: bool) -> ValueTest:
    try:
        return _InNetwork(ipaddress.ip_network(raw, strict=False))
    except ValueError:
        raise PolicyError(
            f"Invalid IpAddress condition value {raw!r}: expected an IP address or CIDR"
        ) from None


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A base operator: how to compile a policy value, and whether the result is negated."""

    name: str
    negated: bool
    prepare: Callable[[str, bool], ValueTest]


def _build_registry() -> dict[str, OperatorSpec]:
    specs: list[OperatorSpec] = [
        OperatorSpec("StringEquals", False, _string_equals(fold=False)),
        OperatorSpec("StringNotEquals", True, _string_equals(fold=False)),
        OperatorSpec("StringEqualsIgnoreCase", False, _string_equals(fold=True)),
        OperatorSpec("StringNotEqualsIgnoreCase", True, _string_equals(fold=True)),
        OperatorSpec("StringLike", False, _string_like),
        OperatorSpec("StringNotLike", True, _string_like),
        # ArnEquals and ArnLike are the same operator in AWS: both honour wildcards.
        OperatorSpec("ArnEquals", False, _arn_like),
        OperatorSpec("ArnLike", False, _arn_like),
        OperatorSpec("ArnNotEquals", True, _arn_like),
        OperatorSpec("ArnNotLike", True, _arn_like),
        OperatorSpec("Bool", False, _bool),
        OperatorSpec("IpAddress", False, _ip),
        OperatorSpec("NotIpAddress", True, _ip),
    ]
    for family, parse in (("Numeric", parse_number), ("Date", parse_date)):
        for suffix, compare in _COMPARE.items():
            specs.append(OperatorSpec(family + suffix, False, _ordered(family, parse, compare)))
        specs.append(OperatorSpec(family + "NotEquals", True, _ordered(family, parse, _COMPARE["Equals"])))
    return {spec.name.lower(): spec for spec in specs}


OPERATORS: Mapping[str, OperatorSpec] = _build_registry()

# --- a parsed condition ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``operator: {key: values}`` entry of a Condition block."""

    operator: str
    key: str
    key_lower: str
    values: tuple[str, ...]
    set_operator: SetOperator
    if_exists: bool
    #: None for the ``Null`` operator.
    spec: OperatorSpec | None
    tests: tuple[ValueTest, ...]

    def evaluate(self, get: Callable[[str], ContextValue | None], lookup: Lookup) -> bool:
        """May raise UnresolvedVariable (the statement then does not match)."""
        raw = get(self.key_lower)
        values: tuple[str, ...] = () if raw is None else (raw,) if isinstance(raw, str) else raw
        if self.spec is None:  # Null: "true" means the key is absent
            return any((v.lower() == "true") == (not values) for v in self.values)
        negated = self.spec.negated
        if self.set_operator == "ForAllValues":
            return all(self._matches(v, lookup) != negated for v in values)
        if self.set_operator == "ForAnyValue":
            if not values:
                return self.if_exists
            return any(self._matches(v, lookup) != negated for v in values)
        if not values:
            return self.if_exists or negated
        for value in values:
            if self._matches(value, lookup):
                return not negated
        return negated

    def _matches(self, value: str, lookup: Lookup) -> bool:
        for test in self.tests:  # noqa: SIM110 - a plain loop is cheaper than any() on this hot path
            if test.test(value, lookup):
                return True
        return False


_SET_PREFIXES: tuple[SetOperator, ...] = ("ForAnyValue", "ForAllValues")


def parse_condition(operator: str, key: str, values: Sequence[str], *, variables: bool) -> Condition:
    """Compile one condition; raise PolicyError for unknown operators or invalid values."""
    set_operator: SetOperator = ""
    base = operator
    for prefix in _SET_PREFIXES:
        if operator.lower().startswith(prefix.lower() + ":"):
            set_operator = prefix
            base = operator[len(prefix) + 1 :]
    if_exists = base.lower().endswith("ifexists")
    if if_exists:
        base = base[: -len("IfExists")]
    if base.lower() == "null":
        if if_exists or set_operator:
            raise PolicyError(f"Unsupported condition operator {operator!r}")
        for value in values:
            if value.lower() not in ("true", "false"):
                raise PolicyError(f"Invalid Null condition value {value!r}: expected true or false")
        return Condition(operator, key, key.lower(), tuple(values), "", False, None, ())
    spec = OPERATORS.get(base.lower())
    if spec is None:
        raise PolicyError(f"Unknown condition operator {operator!r}")
    tests = tuple(spec.prepare(value, variables) for value in values)
    return Condition(operator, key, key.lower(), tuple(values), set_operator, if_exists, spec, tests)
