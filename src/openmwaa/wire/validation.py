"""Server-side validation of decoded input against the model, with AWS-style messages.

botocore checks almost nothing before sending (required members, Python types, minimums),
so every constraint in the model is enforced here: types, lengths and sizes, ranges,
patterns, enums, required members and unknown members, all the way down nested shapes.
Errors are collected, not raised one by one, and read like AWS's::

    2 validation errors detected: Value 'x y' at 'name' failed to satisfy constraint: Member
    must satisfy regular expression pattern: [a-zA-Z][0-9a-zA-Z-_]*; Value null at
    'executionRoleArn' failed to satisfy constraint: Member must not be null

Field paths use lowerCamel member names, ``.N.member`` (1-based) for list elements and
``.<key>`` for map values. Values of sensitive shapes are never echoed (nor are their keys
used in paths).

Our choice, stricter than AWS in places: unknown members are rejected (naming them), and a
JSON value of the wrong type (``"MaxWorkers": "3"``) is a ValidationException rather than a
SerializationException.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from openmwaa.wire.shapes import Shape

#: Java's int and long, which is what AWS's "integer" and "long" shapes are.
_INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
#: A pattern never sees more than this many characters, even for a shape without ``max``.
_MAX_PATTERN_INPUT = 65536
#: How much of an offending value (or unknown member name) an error message repeats.
_MAX_RENDERED = 256
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: Messages shown in one error (the count still says how many there were).
_MAX_SHOWN = 20


def wire_path(parent: str, member_name: str) -> str:
    """AWS names fields in lowerCamel: ``NetworkConfiguration`` -> ``networkConfiguration``."""
    name = member_name[:1].lower() + member_name[1:]
    return f"{parent}.{name}" if parent else name


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_RENDERED else text[:_MAX_RENDERED] + "..."


def _render(value: Any) -> str:
    """A value as AWS's (Java) messages print it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value[:20]) + (", ..." if len(value) > 20 else "") + "]"
    if isinstance(value, dict):
        items = list(value.items())[:20]
        return (
            "{"
            + ", ".join(f"{k}={_render(v)}" for k, v in items)
            + (", ..." if len(value) > 20 else "")
            + "}"
        )
    return str(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class ValidationErrors:
    """Collects constraint violations for one request."""

    def __init__(self) -> None:
        #: The first messages (enough to show); ``count`` has them all.
        self.messages: list[str] = []
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < _MAX_SHOWN:
            self.messages.append(message)

    def constraint(self, value: Any, path: str, constraint: str, *, sensitive: bool = False) -> None:
        if sensitive:
            shown = ""
        elif value is None:
            shown = "null "
        else:
            shown = f"'{_truncate(_render(value))}' "
        self.add(f"Value {shown}at '{path}' failed to satisfy constraint: {constraint}")

    def add_map_key_errors(self, key_errors: ValidationErrors) -> None:
        """Re-phrase a map key's own violations the way AWS does for maps."""
        marker = "failed to satisfy constraint: "
        for message in key_errors.messages:
            self.add(message.replace(marker, marker + "Map keys must satisfy constraint: ", 1))

    def wrong_type(self, value: Any, path: str, expected: str) -> None:
        self.add(
            f"Value at '{path}' failed to satisfy constraint: "
            f"Member must be {expected} (got a JSON {_json_type(value)})"
        )

    def summary(self) -> str:
        count = self.count
        shown = "; ".join(self.messages)
        more = f"; and {count - len(self.messages)} more" if count > len(self.messages) else ""
        noun = "error" if count == 1 else "errors"
        return f"{count} validation {noun} detected: {shown}{more}"


def validate(shape: Shape, value: Any, path: str, errors: ValidationErrors, sensitive: bool = False) -> Any:
    """Check ``value`` (decoded JSON) against ``shape``; return it converted (timestamps -> datetime)."""
    sensitive = sensitive or shape.sensitive
    if shape.document:
        return value
    check = _CHECKS.get(shape.type)
    if check is None:
        raise ValueError(f"shape {shape.name} has unsupported type {shape.type}")
    return check(shape, value, path, errors, sensitive)


def _check_length(
    shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool, *, size: int
) -> None:
    if shape.min is not None and size < shape.min:
        errors.constraint(
            value, path, f"Member must have length greater than or equal to {shape.min}", sensitive=sens
        )
    if shape.max is not None and size > shape.max:
        errors.constraint(
            value, path, f"Member must have length less than or equal to {shape.max}", sensitive=sens
        )


def _string(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if not isinstance(value, str):
        errors.wrong_type(value, path, "a string")
        return value
    if not value.isascii() and _SURROGATE.search(value):
        # json.loads lets "\ud800" through; such a string cannot be stored or logged as UTF-8.
        errors.constraint(None, path, "Member must be valid Unicode (no unpaired surrogates)", sensitive=True)
        return value
    _check_length(shape, value, path, errors, sens, size=len(value))
    # Length first: a pattern is only run on input the model allows in size (ReDoS guard).
    bound = min(shape.max if shape.max is not None else _MAX_PATTERN_INPUT, _MAX_PATTERN_INPUT)
    if shape.compiled is not None and len(value) <= bound and shape.compiled.fullmatch(value) is None:
        errors.constraint(
            value, path, f"Member must satisfy regular expression pattern: {shape.pattern}", sensitive=sens
        )
    if shape.enum and value not in shape.enum:
        errors.constraint(
            value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]", sensitive=sens
        )
    return value


def _check_range(shape: Shape, value: float, path: str, errors: ValidationErrors, sens: bool) -> None:
    low, high = _INTEGER_RANGES.get(shape.type, (None, None))
    minimum = shape.min if shape.min is not None else low
    maximum = shape.max if shape.max is not None else high
    if minimum is not None and value < minimum:
        errors.constraint(
            value, path, f"Member must have value greater than or equal to {minimum}", sensitive=sens
        )
    if maximum is not None and value > maximum:
        errors.constraint(
            value, path, f"Member must have value less than or equal to {maximum}", sensitive=sens
        )


def _integer(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.wrong_type(value, path, "an integer")
        return value
    _check_range(shape, value, path, errors, sens)
    return value


def _double(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.wrong_type(value, path, "a finite number")
        return value
    _check_range(shape, value, path, errors, sens)
    return float(value)


def _boolean(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if not isinstance(value, bool):
        errors.wrong_type(value, path, "a boolean")
    return value


def _timestamp(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    # rest-json bodies carry timestamps as epoch seconds (botocore's default for the protocol).
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.wrong_type(value, path, "a timestamp in epoch seconds")
        return value
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        errors.constraint(value, path, "Member must be a valid timestamp", sensitive=sens)
        return value


def _blob(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if not isinstance(value, str):
        errors.wrong_type(value, path, "a base64-encoded string")
        return value
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        errors.constraint(value, path, "Member must be valid base64", sensitive=sens)
        return value
    _check_length(shape, value, path, errors, sens, size=len(decoded))
    return decoded


def _list(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if not isinstance(value, list):
        errors.wrong_type(value, path, "a list")
        return value
    _check_length(shape, value, path, errors, sens, size=len(value))
    if shape.max is not None and len(value) > shape.max:
        return value  # too many elements: do not spend time (or messages) on each of them
    result = []
    for index, item in enumerate(value, start=1):
        item_path = f"{path}.{index}.member"
        if item is None:
            errors.constraint(None, item_path, "Member must not be null")
            continue
        result.append(validate(shape.member, item, item_path, errors, sens))
    return result


def _map(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if not isinstance(value, dict):
        errors.wrong_type(value, path, "a map (JSON object)")
        return value
    _check_length(shape, value, path, errors, sens, size=len(value))
    if shape.max is not None and len(value) > shape.max:
        return value  # too many elements: do not spend time (or messages) on each of them
    result = {}
    for key, item in value.items():
        key_errors = ValidationErrors()
        validate(shape.key, key, path, key_errors, sens)
        errors.add_map_key_errors(key_errors)
        item_path = f"{path}.*" if sens else f"{path}.{_truncate(key)}"
        if item is None:
            errors.constraint(None, item_path, "Member must not be null")
            continue
        result[key] = validate(shape.value, item, item_path, errors, sens)
    return result


def validate_members(
    shape: Shape, value: Mapping[str, Any], path: str, errors: ValidationErrors, sens: bool
) -> dict[str, Any]:
    """Required and modeled members of a structure whose keys are already known to be members."""
    result: dict[str, Any] = {}
    for name in sorted(shape.required):
        if value.get(name) is None:
            errors.constraint(None, wire_path(path, name), "Member must not be null")
    for name, item in value.items():
        if item is None:
            continue  # JSON null means "not set", as in AWS's own servers
        member = shape.members[name]
        result[name] = validate(member.shape, item, wire_path(path, name), errors, sens)
    return result


def _structure(shape: Shape, value: Any, path: str, errors: ValidationErrors, sens: bool) -> Any:
    if not isinstance(value, dict):
        errors.wrong_type(value, path, "a structure (JSON object)")
        return value
    by_wire_name = {m.wire_name: m.name for m in shape.members.values()}
    known: dict[str, Any] = {}
    for key, item in value.items():
        if key in by_wire_name:
            known[by_wire_name[key]] = item
        else:
            errors.add(f"Unknown member '{_truncate(key)}' at '{path}'")
    return validate_members(shape, known, path, errors, sens)


_CHECKS = {
    "string": _string,
    "integer": _integer,
    "long": _integer,
    "double": _double,
    "float": _double,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "blob": _blob,
    "list": _list,
    "map": _map,
    "structure": _structure,
}
