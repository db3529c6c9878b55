"""Policy templates: literal text, ``*``/``?`` wildcards and ``${...}`` policy variables.

A Resource or condition value is parsed once into a tuple of parts. Variables are
resolved per request; what they resolve to is always *literal* text (a tag value of ``*``
must not widen an Allow), and so are the escapes ``${*}``, ``${?}`` and ``${$}``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from openmwaa.iam.errors import PolicyError


class Wild(enum.Enum):
    STAR = "*"
    QMARK = "?"


@dataclass(frozen=True, slots=True)
class Var:
    """``${key}`` or ``${key, 'default'}``; ``key`` is lower-cased (context keys are case-insensitive)."""

    key: str
    default: str | None


Part = str | Wild | Var
#: After resolution only literals and wildcards remain.
Resolved = str | Wild

#: Context key names: tag keys may hold letters, digits, spaces and ``_.:/=+-@``.
_VAR_NAME = re.compile(r"[A-Za-z0-9_.:/=+\-@ ]{1,256}")
_VAR_DEFAULT = re.compile(r"\s*,\s*'([^']{0,256})'\s*")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


class UnresolvedVariable(Exception):
    """A variable named a key the request does not carry (and no default was given)."""


def parse_template(text: str, *, variables: bool, wildcards: bool) -> tuple[Part, ...]:
    """Split ``text`` into parts; adjacent literal characters are merged."""
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if wildcards and ch in "*?":
            _flush(literal, parts)
            parts.append(Wild.STAR if ch == "*" else Wild.QMARK)
            i += 1
        elif variables and ch == "$" and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise PolicyError(f"Unterminated policy variable in {text!r}")
            inner = text[i + 2 : end]
            if inner in _ESCAPES:
                literal.append(_ESCAPES[inner])
            else:
                _flush(literal, parts)
                parts.append(_parse_var(inner, text))
            i = end + 1
        else:
            literal.append(ch)
            i += 1
    _flush(literal, parts)
    return tuple(parts)


def _flush(literal: list[str], parts: list[Part]) -> None:
    if literal:
        parts.append("".join(literal))
        literal.clear()


def _parse_var(inner: str, text: str) -> Var:
    name, sep, rest = inner.partition(",")
    name = name.strip()
    if not _VAR_NAME.fullmatch(name) or ":" not in name:
        raise PolicyError(f"Invalid policy variable ${{{inner}}} in {text!r}")
    default: str | None = None
    if sep:
        match = _VAR_DEFAULT.fullmatch("," + rest)
        if match is None:
            raise PolicyError(f"Invalid default in policy variable ${{{inner}}} in {text!r}")
        default = match.group(1)
    return Var(key=name.lower(), default=default)


def has_variables(parts: tuple[Part, ...]) -> bool:
    return any(isinstance(part, Var) for part in parts)


def resolve(parts: tuple[Part, ...], lookup: Callable[[str], str | None]) -> tuple[Resolved, ...]:
    """Replace every variable by its literal value; raise UnresolvedVariable when one is missing."""
    out: list[Resolved] = []
    for part in parts:
        if isinstance(part, Var):
            value = lookup(part.key)
            if value is None:
                value = part.default
            if value is None:
                raise UnresolvedVariable(part.key)
            out.append(value)
        else:
            out.append(part)
    return tuple(out)


def literal_text(parts: tuple[Resolved, ...]) -> str:
    """The text of resolved parts that contain no wildcards (used by the Equals operators)."""
    return "".join(part.value if isinstance(part, Wild) else part for part in parts)
