"""One server process openmwaa runs for itself: prepared, started, watched, restarted, stopped.

A thread of its own owns the process (it is tied to that thread's life, see
``supervisor/process.py``): it starts the server, checks every ``check_interval`` that it still
answers, and restarts it with exponential backoff when it exits. :meth:`ManagedServer.problem`
says what is wrong right now (None: it runs and answered its last check).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from openmwaa.runtime.isolation import EnvironmentUser
from openmwaa.supervisor.backoff import CrashTracker, RestartPolicy
from openmwaa.supervisor.process import ChildProcess, log_tail, spawn, stop_all

log = logging.getLogger(__name__)


class BackingServiceError(Exception):
    """A server openmwaa runs for itself cannot be set up or started; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerProgram(Protocol):
    """What :class:`ManagedServer` needs to know about one kind of server."""

    @property
    def name(self) -> str: ...
    @property
    def log_path(self) -> Path: ...
    @property
    def workdir(self) -> Path: ...
    @property
    def user(self) -> EnvironmentUser | None: ...
    #: How to ask it to stop (it gets SIGKILL if it does not within the grace period).
    @property
    def stop_signal(self) -> int: ...

    def prepare(self) -> None:
        """Everything before the first start (initdb, configuration files); idempotent."""

    def argv(self) -> Sequence[str]: ...

    def answers(self) -> bool:
        """A cheap check that the server accepts clients now."""


class ManagedServer:
    def __init__(
        self,
        program: ServerProgram,
        *,
        clock: Callable[[], float] = time.monotonic,
        policy: RestartPolicy | None = None,
        check_interval: float = 2.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.program = program
        self._clock = clock
        self._tracker = CrashTracker(policy or RestartPolicy(max_delay=10.0))
        self._check_interval = check_interval
        self._environ = dict(environ if environ is not None else _server_environ())
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: ChildProcess | None = None
        self._problem: str | None = f"{program.name} has not started yet"
        self._failure: BackingServiceError | None = None

    @property
    def name(self) -> str:
        return self.program.name

    def problem(self) -> str | None:
        return self._problem

    def start(self, timeout: float) -> None:
        """Prepare and start the server; returns once it answers (BackingServiceError if not)."""
        self.program.prepare()
        self._thread = threading.Thread(target=self._run, name=f"openmwaa-{self.name}", daemon=True)
        self._thread.start()
        deadline = self._clock() + timeout
        while not self._ready.wait(0.05):
            if self._failure is not None or self._clock() > deadline:
                self.stop()
                raise self._failure or BackingServiceError(
                    f"{self.name} did not answer within {timeout:.0f} s. End of {self.program.log_path}:\n"
                    f"{log_tail(self.program.log_path)}"
                )

    def stop(self, grace: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(grace + 10)
        self._problem = f"{self.name} is stopped"

    # The server's thread ------------------------------------------------------------------

    def _run(self) -> None:
        restart_at = 0.0
        next_check = 0.0
        while not self._stopping.is_set():
            now = self._clock()
            child = self._child
            if child is None:
                if now >= restart_at:
                    self._child = self._spawn(now)
                    next_check = now
            elif (code := child.poll()) is not None:
                self._child = None
                verdict = self._tracker.record_crash(now)
                restart_at = now + verdict.delay
                self._problem = f"{self.name} exited with code {code}"
                log.warning(
                    "%s exited with code %s; restarting in %.0f s. End of %s:\n%s",
                    self.name,
                    code,
                    verdict.delay,
                    self.program.log_path,
                    log_tail(self.program.log_path),
                )
                if not self._ready.is_set() and verdict.recent >= 3:
                    self._failure = BackingServiceError(
                        f"{self.name} exits as soon as it starts (code {code}). End of "
                        f"{self.program.log_path}:\n{log_tail(self.program.log_path)}"
                    )
            elif now >= next_check:
                next_check = now + (self._check_interval if self._ready.is_set() else 0.1)
                self._check()
            self._stopping.wait(0.1 if not self._ready.is_set() else min(1.0, self._check_interval))
        if self._child is not None:
            self._end(self._child)
            self._child = None

    def _spawn(self, now: float) -> ChildProcess:
        program = self.program
        log.info("starting %s", program.name)
        return spawn(
            program.name,
            list(program.argv()),
            env=self._environ,
            cwd=program.workdir,
            log_path=program.log_path,
            started_at=now,
            shim_python=sys.executable,
            user=program.user,
        )

    def _check(self) -> None:
        if self.program.answers():
            if self._problem is not None and self._ready.is_set():
                log.info("%s answers again", self.name)
            self._problem = None
            self._ready.set()
        elif self._ready.is_set():
            self._problem = f"{self.name} does not answer"

    def _end(self, child: ChildProcess, grace: float = 30.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, self.program.stop_signal)
        try:
            child.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, grace)
        stop_all([child], grace=1.0)


def _server_environ() -> dict[str, str]:
    """A minimal environment: none of openmwaa's variables (credentials among them) reach it."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": "UTC"}
