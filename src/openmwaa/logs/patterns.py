"""CloudWatch Logs filter patterns, the term subset: ``ERROR``, ``"exact phrase"``, ``?any``, ``-not``.

Terms are case-sensitive and must all appear; ``?`` terms match if any of them appears;
``-`` terms must not appear. JSON (``{ ... }``), space-delimited (``[ ... ]``) and regular
expression (``%...%``) patterns are refused with a clear message, never half-applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from openmwaa.errors import ValidationError

MAX_PATTERN: Final = 1024
_TOKEN: Final = re.compile(r'\s*(?:([?-]?)"((?:[^"\\]|\\.)*)"|(\S+))')


@dataclass(frozen=True)
class FilterPattern:
    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @cached_property
    def _raw_terms(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]:
        return (
            tuple(t.encode() for t in self.required),
            tuple(t.encode() for t in self.any_of),
            tuple(t.encode() for t in self.excluded),
        )

    @cached_property
    def anchor(self) -> bytes | None:
        """A term every matching line contains (the longest required one): a search can look
        for it in whole blocks and read only the lines around it. None when there is none."""
        required = self._raw_terms[0]
        return max(required, key=len) if required else None

    def matches_raw(self, raw: bytes) -> bool:
        """:meth:`matches` on a line's UTF-8 bytes, before any decoding (the same answer for valid UTF-8)."""
        required, any_of, excluded = self._raw_terms
        for term in required:
            if term not in raw:
                return False
        if any_of and not any(term in raw for term in any_of):
            return False
        return not any(term in raw for term in excluded)

    def matches(self, message: str) -> bool:
        if any(term not in message for term in self.required):
            return False
        if self.any_of and not any(term in message for term in self.any_of):
            return False
        return not any(term in message for term in self.excluded)


def parse_pattern(text: str | None) -> FilterPattern:
    if not text or not text.strip():
        return FilterPattern()
    if len(text) > MAX_PATTERN:
        raise ValidationError(f"filterPattern must be at most {MAX_PATTERN} characters")
    stripped = text.strip()
    if stripped[0] in "{[%":
        raise ValidationError(
            'openmwaa supports term filter patterns only (words, "quoted phrases", ?any, -exclude)'
        )
    required: list[str] = []
    any_of: list[str] = []
    excluded: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise ValidationError("filterPattern has an unterminated quoted phrase")
            break
        position = match.end()
        prefix, quoted, bare = match.group(1), match.group(2), match.group(3)
        if quoted is not None:
            term = re.sub(r"\\(.)", r"\1", quoted)
        else:
            assert bare is not None
            if '"' in bare:
                raise ValidationError("filterPattern has an unterminated quoted phrase")
            prefix, term = (bare[0], bare[1:]) if bare[0] in "?-" and len(bare) > 1 else ("", bare)
        if not term:
            continue
        {"": required, "?": any_of, "-": excluded}[prefix].append(term)
    return FilterPattern(tuple(required), tuple(any_of), tuple(excluded))
