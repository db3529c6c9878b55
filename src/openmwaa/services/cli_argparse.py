"""Which options a command line carries, read the way Airflow's CLI parser (argparse) reads them.

A check that compares arguments with option names is not enough: argparse expands an unambiguous
prefix (``--sav`` is ``--save``), splits ``--opt=value`` and ``-Xvalue``, and reads a cluster of
short flags one character at a time (``-vS/path`` is ``-v -S /path``). :func:`read_options` follows
CPython's ``ArgumentParser._parse_optional`` and ``consume_optional`` so that the options it reports
are the ones Airflow will act on, and it says where argparse's reading could differ between Python
or Airflow versions (:attr:`OptionRead.meanings`) so the caller can refuse on doubt.

It is pure: it knows nothing of which options are allowed; ``cli_commands`` decides that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

#: argparse's ``_negative_number_matcher``: such an argument is a value unless an option matches it.
_NEGATIVE_NUMBER: Final = re.compile(r"^-\d+$|^-\d*\.\d+$")


class OptionReadError(ValueError):
    """argparse would not read this argument as one known option (unknown, ambiguous, malformed)."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class UnknownOptionError(OptionReadError):
    pass


class AmbiguousOptionError(OptionReadError):
    def __init__(self, argument: str, candidates: Sequence[str]) -> None:
        super().__init__(argument, f"could mean {', '.join(candidates)}")
        self.candidates = tuple(candidates)


@dataclass(frozen=True)
class OptionRead:
    """One option found in one argument."""

    #: The argument as given (``-vS/path``).
    argument: str
    #: The option argparse reads (``-S``).
    option: str
    #: Every option the argument could be read as, ``option`` included: argparse picks an exact
    #: match first, so ``--save`` means ``--save`` where it exists, but ``--save-dagrun`` on a
    #: version without ``--save``. All of them must be acceptable.
    meanings: frozenset[str]


def read_options(args: Sequence[str], options: Mapping[str, bool]) -> list[OptionRead]:
    """The options in ``args`` (a command's arguments), given its options (name -> takes a value).

    Every argument is looked at, including those after ``--`` (how a ``--`` reaches a subcommand's
    parser has changed between Python versions; treating what follows as options is the safe
    reading). Arguments argparse takes as values (``-``, ``--``, negative numbers and text with a
    space that matches no option) yield nothing. Raises :class:`OptionReadError` for an argument
    argparse would reject or could read more than one way.
    """
    reads: list[OptionRead] = []
    for arg in args:
        if len(arg) < 2 or arg[0] != "-" or arg == "--":
            continue
        reads.extend(_read_long(arg, options) if arg[1] == "-" else _read_short(arg, options))
    return reads


def _read_long(arg: str, options: Mapping[str, bool]) -> list[OptionRead]:
    """``--name``, ``--name=value``, or an unambiguous prefix of a ``--name``."""
    name, equals, _ = arg.partition("=")
    meanings = frozenset(o for o in options if o.startswith(name))
    if name in options:
        option = name
    elif len(meanings) == 1:
        (option,) = meanings
    elif meanings:
        raise AmbiguousOptionError(arg, sorted(meanings))
    elif _is_value(arg):
        return []
    else:
        raise UnknownOptionError(arg, f"{arg} is not an option of this command")
    if equals and not options[option]:
        raise OptionReadError(arg, f"{option} takes no value (in {arg})")
    return [OptionRead(arg, option, meanings)]


def _read_short(arg: str, options: Mapping[str, bool]) -> list[OptionRead]:
    """``-X``, ``-Xvalue``, ``-X=value``, a cluster of flags ``-abc``, or a single-dash long option."""
    rest: str | None
    if arg in options:
        option, rest = arg, None
    elif "=" in arg and arg.partition("=")[0] in options:
        option, _, rest = arg.partition("=")
    else:
        candidates = sorted(o for o in options if o == arg[:2] or o.startswith(arg))
        if len(candidates) > 1:
            raise AmbiguousOptionError(arg, candidates)
        if not candidates:
            if _is_value(arg):
                return []
            raise UnknownOptionError(arg, f"{arg} is not an option of this command")
        option = candidates[0]
        rest = arg[2:] if option == arg[:2] else None
    meanings = frozenset(o for o in options if o.startswith(option) and o[1] != "-") | {option}
    reads = [OptionRead(arg, option, meanings)]
    # consume_optional: a flag followed by more characters starts the next short option.
    while rest is not None and not options[option]:
        if rest == "" or option[1] == "-":
            raise OptionReadError(arg, f"{option} takes no value (in {arg})")
        following = "-" + rest[0]
        if following not in options:
            raise UnknownOptionError(arg, f"{following} (in {arg}) is not an option of this command")
        option, rest = following, rest[1:] or None
        reads.append(OptionRead(arg, option, frozenset({option})))
    return reads


def _is_value(arg: str) -> bool:
    """What argparse takes as a value when no option matches: negative numbers, text with a space."""
    return bool(_NEGATIVE_NUMBER.match(arg)) or " " in arg
