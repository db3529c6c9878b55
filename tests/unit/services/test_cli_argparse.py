"""read_options against argparse itself: it must see every option argparse acts on, and no fewer.

Each allowed command's options (from the option table) are declared on a real ``ArgumentParser``
configured as Airflow's is (``allow_abbrev`` on, ``-`` prefix); random argument lists built from
the options' spellings, prefixes, ``=`` forms, clusters and value-like arguments go through both.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Mapping, Sequence

import pytest

from openmwaa.services.cli_argparse import (
    AmbiguousOptionError,
    OptionReadError,
    UnknownOptionError,
    read_options,
)
from openmwaa.services.cli_commands import ALLOWED_COMMANDS, command_options

CASES_PER_COMMAND = 400


class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def _parser(takes_value: Mapping[str, bool], aliases: Mapping[str, str]) -> _Parser:
    parser = _Parser(add_help=False)
    for group in sorted(set(aliases.values())):
        names = group.split("|")
        if takes_value[names[0]]:
            parser.add_argument(*names, dest=group, default=None)
        else:
            parser.add_argument(*names, dest=group, action="store_true", default=None)
    return parser


def _argparse_uses(parser: _Parser, args: Sequence[str]) -> set[str] | None:
    """The option groups argparse sets for ``args``, or None if it refuses them."""
    try:
        namespace, _ = parser.parse_known_args(list(args))
    except _Refused:
        return None
    return {dest for dest, value in vars(namespace).items() if value is not None}


def _vocabulary(takes_value: Mapping[str, bool], rng: random.Random) -> list[str]:
    words = ["--", "-", "-1", "-2.5", "x", "/tmp/f.dot", "-a b", "--x y", "-q", "--nope", "="]
    shorts = [o for o in takes_value if o[1] != "-"]
    for option in takes_value:
        words += [option, f"{option}=v", f"{option}="]
        if option.startswith("--"):
            words += [option[:n] for n in range(3, len(option))]
            words += [f"{option[: rng.randrange(3, len(option) + 1)]}=v"]
        else:
            words += [f"{option}v", f"{option}S/path", f"{option}=S/x"]
    for _ in range(40):
        cluster = "".join(rng.choice(shorts)[1] for _ in range(rng.randrange(2, 4)))
        words += [f"-{cluster}", f"-{cluster}S/path", f"-{cluster}=x", f"-{cluster}q"]
    return words


def _all_commands() -> list[tuple[int, tuple[str, ...]]]:
    return [(m, c) for m in sorted(ALLOWED_COMMANDS) for c in sorted(ALLOWED_COMMANDS[m])]


@pytest.mark.parametrize(("major", "command"), _all_commands(), ids=str)
def test_read_options_sees_what_argparse_acts_on(major: int, command: tuple[str, ...]) -> None:
    options = command_options(command, major)
    parser = _parser(options.takes_value, options.aliases)
    rng = random.Random(f"{major} {command}")
    words = [[w] for w in _vocabulary(options.takes_value, rng)]
    # Well-formed pieces too: an option with its value, a positional.
    plain = [[o, "x"] if value else [o] for o, value in options.takes_value.items()] + [["x"], ["-1"]]
    agreed = 0
    for _ in range(CASES_PER_COMMAND):
        args = [
            w for _ in range(rng.randrange(1, 5)) for w in rng.choice(words if rng.random() < 0.5 else plain)
        ]
        used = _argparse_uses(parser, args)
        try:
            reads = read_options(args, options.takes_value)
        except OptionReadError:
            continue  # refused: whatever argparse would do, nothing runs
        seen = {options.aliases[r.option] for r in reads}
        if used is None:
            continue  # argparse refuses it too: Airflow would run nothing
        # Safety: every option argparse acts on was seen (and so checked against the allow-list).
        assert used <= seen, (args, used, seen)
        if "--" not in args:
            # Precision: nothing is reported that argparse does not act on (after "--" we are
            # stricter on purpose).
            assert seen == used, (args, used, seen)
        agreed += 1
    assert agreed > CASES_PER_COMMAND // 10  # the comparison did happen


TABLE = {"--save": True, "--save-dagrun": True, "--show": False, "-s": True, "-v": False, "-x": False}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--save-", "/tmp/f"], ["--save-dagrun"]),
        (["--save=/tmp/f"], ["--save"]),
        (["--save-d=/tmp/f"], ["--save-dagrun"]),
        (["--sh"], ["--show"]),
        (["-vs/tmp/f"], ["-v", "-s"]),
        (["-vx"], ["-v", "-x"]),
        (["-xvs", "f"], ["-x", "-v", "-s"]),
        (["-s=/tmp/f"], ["-s"]),
        (["-v=x"], ["-v", "-x"]),
        (["-sv"], ["-s"]),  # -s takes a value: "v" is it
        (["--", "-s", "f"], ["-s"]),
        (["-1", "-2.5", "-", "--", "-a b", "--x y=1", "plain"], []),
    ],
)
def test_reads(args: list[str], expected: list[str]) -> None:
    assert [r.option for r in read_options(args, TABLE)] == expected


def test_an_exact_match_still_reports_the_longer_options_it_could_mean() -> None:
    """Where --save does not exist (another version), argparse reads --save as --save-dagrun."""
    (read,) = read_options(["--save", "f"], TABLE)
    assert read.option == "--save" and read.meanings == {"--save", "--save-dagrun"}


@pytest.mark.parametrize(
    ("args", "error", "text"),
    [
        (["--s"], AmbiguousOptionError, "could mean --save, --save-dagrun, --show"),
        (["--sa"], AmbiguousOptionError, "--save, --save-dagrun"),
        (["--nope"], UnknownOptionError, "--nope is not an option"),
        (["-q"], UnknownOptionError, "-q is not an option"),
        (["-vq"], UnknownOptionError, "-q (in -vq)"),
        (["--show=yes"], OptionReadError, "--show takes no value"),
        (["-v="], OptionReadError, "-v takes no value"),
        (["-S/path"], UnknownOptionError, "-S/path is not an option"),
    ],
)
def test_refusals(args: list[str], error: type[OptionReadError], text: str) -> None:
    with pytest.raises(error) as caught:
        read_options(args, TABLE)
    assert text in caught.value.problem
