"""Component processes: started in their own session, tied to openmwaa's life, stopped as a group.

Each component is a session leader (``start_new_session``), so signalling its process group
reaches the workers it forks too. It is started through a tiny shim that asks the kernel for
SIGTERM when the thread that started it dies (``PR_SET_PDEATHSIG``) and then execs Airflow:
this way nothing Python runs between fork and exec (``preexec_fn`` is unsafe with threads),
and a ``kill -9`` of openmwaa still takes its Airflow processes down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from openmwaa.runtime.beneath import open_log
from openmwaa.runtime.isolation import EnvironmentUser, popen_args
from openmwaa.supervisor.proc import all_stats, read_stat, session_members

_PR_SET_PDEATHSIG: Final = 1
# argv: shim <expected parent pid> <program> <args...>. If the parent is already gone when the
# shim runs, exit rather than live on unsupervised.
PDEATHSIG_SHIM: Final = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None, use_errno=True).prctl({_PR_SET_PDEATHSIG}, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(70)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


@dataclass
class ChildProcess:
    name: str
    popen: subprocess.Popen[bytes] = field(repr=False)
    start_ticks: int
    started_at: float
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    started_at: float,
    shim_python: str,
    user: EnvironmentUser | None = None,
) -> ChildProcess:
    """Start ``argv`` (argv[0] an absolute path; as ``user`` if given), output appended to ``log_path``."""
    command = tied_to_this_thread(shim_python, argv)
    # The log is in the environment's home: opened without following links planted there.
    with os.fdopen(open_log(log_path, cwd), "ab") as log:
        log.write(f"\n--- openmwaa: starting {name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            command,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            **popen_args(user),
        )
    stat = read_stat(popen.pid)
    return ChildProcess(name, popen, stat.start_ticks if stat else 0, started_at, log_path)


def tied_to_this_thread(shim_python: str, argv: Sequence[str]) -> list[str]:
    """``argv`` started through the shim: it gets SIGTERM when the thread starting it ends."""
    return [shim_python, "-S", "-c", PDEATHSIG_SHIM, str(os.getpid()), *argv]


def stop_all(children: Sequence[ChildProcess], grace: float = 20.0) -> None:
    """SIGTERM every child's process group, wait up to ``grace``, then SIGKILL what is left."""
    if not children:
        return  # nothing to stop: no scan of every process in /proc
    for child in children:
        _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    # Whatever remains in the sessions (the leader, or workers that outlived it) goes now.
    stats = all_stats()
    for child in children:
        _signal_group(child.pid, signal.SIGKILL)
        for pid in session_members(child.pid, child.start_ticks, stats):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored
            child.popen.wait(timeout=5)


def log_tail(path: Path, lines: int = 15, limit: int = 1500) -> str:
    """The end of a component's log, for error messages (never through a link: it may be planted)."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    tail = "\n".join(line.rstrip() for line in text.strip().splitlines()[-lines:])
    return tail[-limit:]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
