"""AWS model patterns (Java regular expressions) compiled for Python's ``re``.

The MWAA model's patterns are written for Java: they may use Unicode property classes
(``\\p{L}``, ``\\p{Z}``, ``\\p{N}`` in tag keys and values) that ``re`` does not know, and they are
matched against the whole value (AWS validates with full-match semantics). We translate the
property classes into explicit code-point ranges built from :mod:`unicodedata` and compile
with ``re.ASCII`` so that ``\\d`` and ``\\w`` mean what they mean in Java (ASCII only).

Callers must bound the length of a value before matching it (the validator checks the
model's ``max`` first) so that a pattern with nested quantifiers cannot be fed megabytes.
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
import unicodedata

_PROPERTY = re.compile(r"\\([pP])\{([A-Za-z]{1,2})\}")


@functools.cache
def _category_runs() -> tuple[tuple[int, int, str], ...]:
    """Maximal runs ``(first, last, category)`` of code points sharing a Unicode category.

    One scan of the code space (a fraction of a second), done on first use, never at import.
    """
    runs: list[tuple[int, int, str]] = []
    for category, group in itertools.groupby(
        range(sys.maxunicode + 1), key=lambda cp: unicodedata.category(chr(cp))
    ):
        members = list(group)
        runs.append((members[0], members[-1], category))
    return tuple(runs)


@functools.cache
def _category_ranges(prefix: str) -> str:
    """Character-class body (no brackets) for every code point whose category starts with ``prefix``."""
    merged: list[list[int]] = []
    for first, last, category in _category_runs():
        if not category.startswith(prefix):
            continue
        if merged and merged[-1][1] == first - 1:
            merged[-1][1] = last
        else:
            merged.append([first, last])
    if not merged:
        raise ValueError(f"unknown Unicode category in pattern: \\p{{{prefix}}}")
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in merged)


def translate_java_pattern(pattern: str) -> str:
    """Rewrite the Java-only constructs of ``pattern`` into ``re`` syntax."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            prop = _PROPERTY.match(pattern, i)
            if prop is not None:
                negated = prop.group(1) == "P"
                ranges = _category_ranges(prop.group(2))
                if in_class and negated:
                    raise ValueError(f"unsupported negated property inside a class: {pattern!r}")
                if in_class:
                    out.append(ranges)
                else:
                    out.append(f"[{'^' if negated else ''}{ranges}]")
                i = prop.end()
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            # A ']' right after '[' or '[^' is a literal in both dialects.
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):
                out.append("\\]")
                i += 1
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a model pattern once; use ``fullmatch`` on the result."""
    return re.compile(translate_java_pattern(pattern), re.ASCII)
