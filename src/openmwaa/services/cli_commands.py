"""The Airflow CLI behind ``POST /aws_mwaa/cli``: MWAA's allow-list, strict parsing, bounded execution.

The request body is one command line without the leading ``airflow`` (``dags trigger my_dag``). It
is split with :func:`shlex.split` and never reaches a shell; only the commands in
:data:`ALLOWED_COMMANDS` for the environment's Airflow major version run, as MWAA allows only a
documented subset. Commands that read or write server files (``variables import/export``,
``connections import/export``) and ``config`` (it prints the environment's signing secrets) are not
in the list at all.

Each command may carry only the options Airflow defines for it (``cli_option_table``, read from
every supported Airflow version) minus those in :data:`REFUSED_OPTIONS`, which point Airflow at
files of the caller's choosing (``--subdir`` and ``dags test --dagfile-path`` parse any Python file
as DAGs; ``dags show --save`` and ``dags test --save-dagrun`` write files) or run programs
(``--imgcat``). Options are read the way Airflow's argparse reads them (``cli_argparse``): ``--sav``
is ``--save`` and ``-vS/path`` carries ``-S``. An argument that is unknown, ambiguous, or could
mean a refused option on any supported version is refused.

Commands run through a :class:`CliRunner` (the supervisor's: the environment's own ``airflow``
with its component environment) with a timeout, at most ``max_concurrent`` per environment at
once; MWAA likewise limits CLI concurrency and asks callers to wait for one command before the next.
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final, Protocol

from anyio.to_thread import run_sync

from openmwaa.errors import ServiceUnavailableError, ThrottlingError, ValidationError
from openmwaa.runtime import versions
from openmwaa.services.cli_argparse import AmbiguousOptionError, OptionReadError, read_options
from openmwaa.services.cli_option_table import AIRFLOW_OPTIONS
from openmwaa.services.web_tokens import CliLogin
from openmwaa.store.environments import EnvironmentRecord

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES: Final = 16 * 1024
MAX_ARGUMENTS: Final = 200

_SHARED: Final = frozenset(
    {
        ("cheat-sheet",),
        ("version",),
        ("plugins",),
        ("connections", "add"),
        ("connections", "delete"),
        ("dags", "delete"),
        ("dags", "list"),
        ("dags", "list-import-errors"),
        ("dags", "list-jobs"),
        ("dags", "list-runs"),
        ("dags", "next-execution"),
        ("dags", "pause"),
        ("dags", "unpause"),
        ("dags", "report"),
        ("dags", "show"),
        ("dags", "state"),
        ("dags", "test"),
        ("dags", "trigger"),
        ("db", "check"),
        ("jobs", "check"),
        ("pools", "get"),
        ("pools", "list"),
        ("pools", "set"),
        ("pools", "delete"),
        ("providers", "behaviours"),
        ("providers", "get"),
        ("providers", "hooks"),
        ("providers", "links"),
        ("providers", "list"),
        ("providers", "widgets"),
        ("tasks", "clear"),
        ("tasks", "failed-deps"),
        ("tasks", "list"),
        ("tasks", "render"),
        ("tasks", "state"),
        ("tasks", "states-for-dag-run"),
        ("tasks", "test"),
        ("variables", "delete"),
        ("variables", "get"),
        ("variables", "list"),
        ("variables", "set"),
    }
)

#: Airflow major version -> the commands (group, subcommand) the CLI endpoint runs.
ALLOWED_COMMANDS: Final[Mapping[int, frozenset[tuple[str, ...]]]] = {
    2: _SHARED | {("dags", "backfill"), ("roles", "list")},
    3: _SHARED
    | {
        ("backfill", "create"),
        ("assets", "list"),
        ("assets", "details"),
        ("assets", "materialize"),
    },
}

_PARSES_ANY_FILE: Final = "it makes Airflow parse any Python file on the server"
_WRITES_A_FILE: Final = "it writes a file on the server"
_RUNS_A_PROGRAM: Final = "it runs a program on the server"

#: Options a command may not carry, by any spelling (an option's aliases are refused with it), and
#: why. ``None`` stands for every command that has the option.
REFUSED_OPTIONS: Final[Mapping[tuple[str, ...] | None, Mapping[str, str]]] = {
    None: {"--subdir": _PARSES_ANY_FILE},
    ("dags", "show"): {"--save": _WRITES_A_FILE, "--imgcat": _RUNS_A_PROGRAM},
    ("dags", "test"): {
        "--save-dagrun": _WRITES_A_FILE,
        "--imgcat-dagrun": _RUNS_A_PROGRAM,
        "--dagfile-path": _PARSES_ANY_FILE,
    },
}


class CliCommandRefusedError(ValidationError):
    """The command is not one the CLI endpoint runs, or cannot be parsed."""


class CliRunner(Protocol):
    def run(self, record: EnvironmentRecord, argv: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        """Run ``airflow <argv...>`` for the environment; (exit code, stdout, stderr).

        ``argv`` excludes ``airflow`` itself. On timeout the process is killed and whatever it
        wrote so far is returned with a non-zero exit code.
        """


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def parse_cli_command(text: str, major: int) -> list[str]:
    """The argv (without ``airflow``) for an allowed command; CliCommandRefusedError otherwise."""
    if len(text.encode()) > MAX_COMMAND_BYTES:
        raise CliCommandRefusedError(f"The command is longer than {MAX_COMMAND_BYTES} bytes.")
    try:
        argv = shlex.split(text, comments=False, posix=True)
    except ValueError as exc:
        raise CliCommandRefusedError(f"The command cannot be parsed: {exc}.") from None
    if argv and argv[0] == "airflow":
        argv = argv[1:]
    if not argv:
        raise CliCommandRefusedError("No command given; send e.g. 'dags list' as the request body.")
    if len(argv) > MAX_ARGUMENTS:
        raise CliCommandRefusedError(f"The command has more than {MAX_ARGUMENTS} arguments.")
    if any("\x00" in arg for arg in argv):
        raise CliCommandRefusedError("The command contains a NUL character.")
    allowed = ALLOWED_COMMANDS.get(major, frozenset())
    command = _match(argv, allowed)
    if command is None:
        shown = " ".join(argv[:2])
        raise CliCommandRefusedError(
            f"'airflow {shown}' is not a supported command on this Airflow {major} environment. "
            f"Supported: {', '.join(sorted(' '.join(c) for c in allowed))}."
        )
    _check_options(command, argv[len(command) :], major)
    return argv


def _match(argv: Sequence[str], allowed: frozenset[tuple[str, ...]]) -> tuple[str, ...] | None:
    for length in (2, 1):
        candidate = tuple(argv[:length])
        if len(candidate) == length and candidate in allowed:
            return candidate
    return None


@dataclass(frozen=True)
class CommandOptions:
    """What Airflow defines for one command, and which of it the CLI endpoint refuses."""

    #: Every option spelling Airflow defines for the command -> whether it takes a value.
    takes_value: Mapping[str, bool]
    #: Refused spellings -> why.
    refused: Mapping[str, str]
    #: Each spelling -> all spellings of the same option (``-S`` -> ``-S|--subdir``).
    aliases: Mapping[str, str]

    @property
    def allowed(self) -> list[str]:
        """The allowed options, aliases together (``-o|--output``)."""
        return sorted({self.aliases[o] for o in self.takes_value if o not in self.refused})


@cache
def command_options(command: tuple[str, ...], major: int) -> CommandOptions:
    """The options of an allowed command on Airflow ``major`` (empty for an unknown command)."""
    spec = AIRFLOW_OPTIONS.get(major, {}).get(" ".join(command), "")
    refusals = {**REFUSED_OPTIONS[None], **REFUSED_OPTIONS.get(command, {})}
    takes_value: dict[str, bool] = {}
    refused: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for group in spec.split():
        names = group.removesuffix("=").split("|")
        reason = next((refusals[n] for n in names if n in refusals), None)
        for name in names:
            takes_value[name] = group.endswith("=")
            aliases[name] = "|".join(names)
            if reason is not None:
                refused[name] = reason
    return CommandOptions(takes_value, refused, aliases)


def _check_options(command: tuple[str, ...], args: Sequence[str], major: int) -> None:
    options = command_options(command, major)
    shown = f"'airflow {' '.join(command)}'"
    try:
        reads = read_options(args, options.takes_value)
    except AmbiguousOptionError as exc:
        raise CliCommandRefusedError(
            f"Option {exc.argument} is ambiguous for {shown}: it could mean "
            f"{', '.join(exc.candidates)}. Spell the option out."
        ) from None
    except OptionReadError as exc:
        raise CliCommandRefusedError(
            f"{exc.problem}. Options of {shown} allowed through the CLI endpoint on Airflow {major}: "
            f"{', '.join(options.allowed) or 'none'}."
        ) from None
    for read in reads:
        for meaning in sorted(read.meanings, key=lambda m: m != read.option):
            reason = options.refused.get(meaning)
            if reason is None:
                continue
            spelled = options.aliases[meaning]
            what = f"Option {read.argument}"
            if spelled != read.argument:
                what += f" (which Airflow reads as {spelled})"
            raise CliCommandRefusedError(
                f"{what} is not allowed for {shown} through the CLI endpoint: {reason}."
            )


class CliTokenVerifier(Protocol):
    def verify_cli_token(self, token: str, *, environment_arn: str) -> CliLogin: ...


class CliService:
    """Runs allowed commands with a timeout, at most ``max_concurrent`` at once per environment."""

    def __init__(
        self,
        runner: CliRunner,
        tokens: CliTokenVerifier,
        *,
        max_concurrent: int = 2,
        timeout: float = 60.0,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._runner = runner
        self._tokens = tokens
        self._max = max_concurrent
        self._timeout = timeout
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    async def run_with_token(self, record: EnvironmentRecord, token: str, command_text: str) -> CliResult:
        """What ``POST /aws_mwaa/cli`` does: check the CLI token, then :meth:`run` the command.

        Raises InvalidWebTokenError (a token that is not this environment's), ServiceUnavailableError
        (the environment is not AVAILABLE), CliCommandRefusedError and ThrottlingError.
        """
        login = self._tokens.verify_cli_token(token, environment_arn=record.arn)
        if record.status != "AVAILABLE":
            raise ServiceUnavailableError(
                f"Environment {record.name} is {record.status}; the CLI is not available."
            )
        result = await self.run(record, command_text)
        # Only the command's first words: arguments may carry secrets (variables set k v).
        log.info(
            "cli on %s by %s: %s -> %d",
            record.name,
            login.identity,
            " ".join(command_text.split()[:2]),
            result.exit_code,
        )
        return result

    async def run(self, record: EnvironmentRecord, command_text: str) -> CliResult:
        """Run an allowed command for the environment (the caller has checked who asks)."""
        argv = parse_cli_command(command_text, versions.major(str(record.config["AirflowVersion"])))
        slots = self._slots_for(str(record.key))
        if not slots.acquire(blocking=False):
            raise ThrottlingError(
                f"{self._max} CLI commands are already running on {record.name}; "
                "wait for one to finish before sending the next."
            )
        try:
            code, out, err = await run_sync(self._runner.run, record, argv, self._timeout)
        finally:
            slots.release()
        return CliResult(code, out, err)

    def _slots_for(self, key: str) -> threading.BoundedSemaphore:
        with self._lock:
            slots = self._slots.get(key)
            if slots is None:
                slots = self._slots[key] = threading.BoundedSemaphore(self._max)
            return slots


class SupervisedCli(Protocol):
    def run_cli(self, key: str, argv: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]: ...


class SupervisorCliRunner:
    """The real :class:`CliRunner`: ``airflow`` from the environment's runtime, with its configuration."""

    def __init__(self, supervisor: SupervisedCli) -> None:
        self._supervisor = supervisor

    def run(self, record: EnvironmentRecord, argv: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        return self._supervisor.run_cli(str(record.key), argv, timeout)
