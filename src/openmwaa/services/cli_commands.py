"""The Airflow CLI behind ``POST /aws_mwaa/cli``: MWAA's allow-list, strict parsing, bounded execution.

The request body is one command line without the leading ``airflow`` (``dags trigger my_dag``). It
is split with :func:`shlex.split` and never reaches a shell; only the commands in
:data:`ALLOWED_COMMANDS` for the environment's Airflow major version run, as MWAA allows only a
documented subset. On top of MWAA's list openmwaa refuses the options that point Airflow at files
of the server's choosing (``--subdir`` parses any Python file as DAGs; ``dags show --save`` and
``dags test --save-dagrun`` write files), and commands that read or write server files
(``variables import/export``, ``connections import/export``) and ``config`` (it prints the
environment's signing secrets) are not in the list at all.

Commands run through a :class:`CliRunner` (the supervisor's: the environment's own ``airflow``
with its component environment) with a timeout, at most ``max_concurrent`` per environment at
once; MWAA likewise limits CLI concurrency and asks callers to wait for one command before the next.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from anyio.to_thread import run_sync

from openmwaa.errors import ThrottlingError, ValidationError
from openmwaa.store.environments import EnvironmentRecord

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

#: Options refused everywhere / for one command (long forms, and short forms where they exist).
_DENIED_EVERYWHERE: Final = frozenset({"--subdir", "-S"})
_DENIED_FOR: Final[Mapping[tuple[str, ...], frozenset[str]]] = {
    ("dags", "show"): frozenset({"--save", "-s", "--imgcat"}),
    ("dags", "test"): frozenset({"--save-dagrun", "--imgcat-dagrun"}),
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


def airflow_major(record: EnvironmentRecord) -> int:
    return int(str(record.config["AirflowVersion"]).split(".", 1)[0])


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
    denied = _DENIED_EVERYWHERE | _DENIED_FOR.get(command, frozenset())
    for arg in argv[len(command) :]:
        if _option_name(arg) in denied:
            raise CliCommandRefusedError(
                f"Option {_option_name(arg)} is not allowed through the CLI endpoint "
                f"(it reads or writes files on the server)."
            )
    return argv


def _match(argv: Sequence[str], allowed: frozenset[tuple[str, ...]]) -> tuple[str, ...] | None:
    for length in (2, 1):
        candidate = tuple(argv[:length])
        if len(candidate) == length and candidate in allowed:
            return candidate
    return None


def _option_name(arg: str) -> str:
    """``--subdir=x`` -> ``--subdir``; ``-Sx`` -> ``-S``; anything else unchanged."""
    if arg.startswith("--"):
        return arg.split("=", 1)[0]
    if arg.startswith("-") and len(arg) > 1:
        return arg[:2]
    return arg


class CliService:
    """Runs allowed commands with a timeout, at most ``max_concurrent`` at once per environment."""

    def __init__(self, runner: CliRunner, *, max_concurrent: int = 2, timeout: float = 60.0) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._runner = runner
        self._max = max_concurrent
        self._timeout = timeout
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    async def run(self, record: EnvironmentRecord, command_text: str) -> CliResult:
        argv = parse_cli_command(command_text, airflow_major(record))
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
