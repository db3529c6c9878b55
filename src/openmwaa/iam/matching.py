"""Wildcard matching for actions and ARNs, without regular expressions.

A pattern is split on ``*`` into segments; each segment is a run of literal pieces joined
by single-character ``?`` holes. Matching anchors the first segment at the start and the
last at the end, then places every middle segment at its leftmost occurrence. Leftmost is
always optimal for ``*`` patterns, so there is no backtracking: the cost is bounded by
``len(subject) * len(pattern)`` in the worst case and is usually a few ``str.find`` calls.

ARNs are matched field by field (partition, service, region, account, resource), so a
``*`` in the region field never swallows a ``:``; in the resource field it spans ``/``
and ``:`` alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openmwaa.iam.errors import PolicyError
from openmwaa.iam.variables import (
    Part,
    Resolved,
    UnresolvedVariable,
    Var,
    Wild,
    has_variables,
    parse_template,
    resolve,
)

Lookup = Callable[[str], str | None]

#: A segment: literal pieces, consecutive pieces separated by exactly one ``?``.
_Segment = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled ``*``/``?`` pattern. ``exact`` is set when there is no wildcard at all."""

    exact: str | None
    segments: tuple[_Segment, ...]
    lengths: tuple[int, ...]
    #: (prefix, suffix) for the common ``prefix*suffix`` shape without ``?`` (``Get*``, ``*``).
    affix: tuple[str, str] | None = None

    @classmethod
    def compile(cls, parts: tuple[Resolved, ...], *, lower: bool = False) -> Glob:
        segments: list[_Segment] = []
        pieces: list[str] = []
        current: list[str] = []
        for part in parts:
            if part is Wild.STAR:
                pieces.append("".join(current))
                segments.append(tuple(pieces))
                pieces, current = [], []
            elif part is Wild.QMARK:
                pieces.append("".join(current))
                current = []
            else:
                assert isinstance(part, str)
                current.append(part.lower() if lower else part)
        pieces.append("".join(current))
        segments.append(tuple(pieces))
        lengths = tuple(sum(len(p) for p in seg) + len(seg) - 1 for seg in segments)
        exact = segments[0][0] if len(segments) == 1 and len(segments[0]) == 1 else None
        affix = None
        if len(segments) == 2 and len(segments[0]) == 1 and len(segments[1]) == 1:
            affix = (segments[0][0], segments[1][0])
        return cls(exact=exact, segments=tuple(segments), lengths=lengths, affix=affix)

    @classmethod
    def from_text(cls, text: str, *, lower: bool = False) -> Glob:
        return cls.compile(_no_vars(parse_template(text, variables=False, wildcards=True)), lower=lower)

    def match(self, subject: str) -> bool:
        if self.exact is not None:
            return subject == self.exact
        if self.affix is not None:
            prefix, suffix = self.affix
            return (
                len(subject) >= len(prefix) + len(suffix)
                and subject.startswith(prefix)
                and subject.endswith(suffix)
            )
        segments, lengths = self.segments, self.lengths
        n = len(subject)
        if len(segments) == 1:
            return lengths[0] == n and _match_at(segments[0], subject, 0) == n
        pos = _match_at(segments[0], subject, 0)
        if pos < 0:
            return False
        end_start = n - lengths[-1]
        if end_start < pos or _match_at(segments[-1], subject, end_start) < 0:
            return False
        for index in range(1, len(segments) - 1):
            found = _find(segments[index], lengths[index], subject, pos, end_start)
            if found < 0:
                return False
            pos = found + lengths[index]
        return True


def _no_vars(parts: tuple[Part, ...]) -> tuple[Resolved, ...]:
    return tuple(part for part in parts if not isinstance(part, Var))


def _match_at(segment: _Segment, subject: str, start: int) -> int:
    """End of ``segment`` matched at ``start``, or -1."""
    pos = start
    last = len(segment) - 1
    for k, piece in enumerate(segment):
        if not subject.startswith(piece, pos):
            return -1
        pos += len(piece)
        if k < last:
            if pos >= len(subject):
                return -1
            pos += 1
    return pos


def _find(segment: _Segment, length: int, subject: str, start: int, limit: int) -> int:
    """Leftmost index ``i`` in ``[start, limit - length]`` where ``segment`` matches, or -1."""
    if len(segment) == 1:
        return subject.find(segment[0], start, limit)
    first = segment[0]
    i = start
    while i + length <= limit:
        if first:
            i = subject.find(first, i, limit)
            if i < 0 or i + length > limit:
                return -1
        if _match_at(segment, subject, i) >= 0:
            return i
        i += 1
    return -1


@dataclass(frozen=True, slots=True)
class ActionPattern:
    """``*`` or ``service:name-pattern``; matched case-insensitively."""

    text: str
    #: Lower-cased service prefix, or None for ``*``.
    service: str | None
    #: The lower-cased full action when the pattern has no wildcard (index key).
    exact: str | None
    name: Glob

    @classmethod
    def parse(cls, text: str) -> ActionPattern:
        if text == "*":
            return cls(text=text, service=None, exact=None, name=Glob.from_text("*"))
        service, sep, name = text.partition(":")
        if not sep or not _is_service(service) or not name or not _is_action_name(name):
            raise PolicyError(f"Invalid action {text!r}: expected '*' or 'service:ActionName'")
        glob = Glob.from_text(name, lower=True)
        exact = text.lower() if glob.exact is not None else None
        return cls(text=text, service=service.lower(), exact=exact, name=glob)

    def match(self, service: str, name: str) -> bool:
        """``service`` and ``name`` must already be lower-cased."""
        if self.service is not None and self.service != service:
            return False
        return self.name.match(name)


def _is_service(text: str) -> bool:
    return bool(text) and all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in text)


def _is_action_name(text: str) -> bool:
    return all(ch.isascii() and (ch.isalnum() or ch in "*?") for ch in text)


def split_arn(text: str) -> tuple[str, ...] | None:
    """The six fields of an ARN (``arn``, partition, service, region, account, resource), or None."""
    fields = text.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn":
        return None
    return tuple(fields)


@dataclass(frozen=True, slots=True)
class ArnPattern:
    """A Resource entry (or an Arn* condition value): ``*`` or an ARN with wildcards and variables."""

    text: str
    any: bool
    #: Per field (partition, service, region, account, resource): the template parts.
    fields: tuple[tuple[Part, ...], ...]
    #: Precompiled globs when no field holds a variable.
    globs: tuple[Glob, ...] | None
    #: (field number, glob) for the precompiled fields that are not a lone ``*``.
    checks: tuple[tuple[int, Glob], ...] = ()

    @classmethod
    def parse(cls, text: str, *, variables: bool) -> ArnPattern:
        parts = parse_template(text, variables=variables, wildcards=True)
        if parts == (Wild.STAR,):
            return cls(text=text, any=True, fields=(), globs=None)
        fields = _split_fields(parts)
        if fields is None or fields[0] != ("arn",):
            raise PolicyError(
                f"Invalid resource {text!r}: expected '*' or 'arn:partition:service:region:account:resource'"
            )
        arn_fields = fields[1:]
        globs = None
        checks: tuple[tuple[int, Glob], ...] = ()
        if not any(has_variables(f) for f in arn_fields):
            globs = tuple(Glob.compile(_no_vars(f)) for f in arn_fields)
            checks = tuple((n, g) for n, g in enumerate(globs, start=1) if _not_star(arn_fields[n - 1]))
        return cls(text=text, any=False, fields=arn_fields, globs=globs, checks=checks)

    def match(self, subject: str, subject_fields: tuple[str, ...] | None, lookup: Lookup) -> bool:
        """Match ``subject`` (pre-split with :func:`split_arn`); may raise UnresolvedVariable."""
        if self.any:
            return True
        if subject_fields is None:
            return False
        if self.globs is not None:
            for number, glob in self.checks:  # noqa: SIM110 - cheaper than all() on the hot path
                if not glob.match(subject_fields[number]):
                    return False
            return True
        globs = tuple(Glob.compile(resolve(f, lookup)) for f in self.fields)
        return all(glob.match(value) for glob, value in zip(globs, subject_fields[1:], strict=True))


def _not_star(field: tuple[Part, ...]) -> bool:
    return field != (Wild.STAR,)


def _split_fields(parts: tuple[Part, ...]) -> tuple[tuple[Part, ...], ...] | None:
    """Split on the first five literal ``:`` (never inside a variable); None if fewer than six fields."""
    fields: list[list[Part]] = [[]]
    for part in parts:
        if isinstance(part, str) and len(fields) < 6 and ":" in part:
            pieces = part.split(":", 6 - len(fields))
            for k, piece in enumerate(pieces):
                if k > 0:
                    fields.append([])
                if piece:
                    fields[-1].append(piece)
        else:
            fields[-1].append(part)
    if len(fields) != 6:
        return None
    return tuple(tuple(f) for f in fields)


__all__ = ["ActionPattern", "ArnPattern", "Glob", "UnresolvedVariable", "split_arn"]
