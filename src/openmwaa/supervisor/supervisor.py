"""The supervisor: one :class:`EnvironmentRunner` thread per environment, behind a small facade.

Every public method only enqueues work and returns at once; outcomes arrive through
``on_event``. This is the interface the services layer codes against.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from openmwaa.runtime.installer import RuntimeManager
from openmwaa.runtime.isolation import popen_args
from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.commands import Command, Create, Delete, Resume, Shutdown, Update
from openmwaa.supervisor.environment import EnvironmentRunner
from openmwaa.supervisor.launcher import LocalLauncher
from openmwaa.supervisor.reaper import Reaper
from openmwaa.supervisor.spec import EnvironmentEvent, EnvironmentSpec
from openmwaa.supervisor.timings import Timings
from openmwaa.supervisor.watch import BackendCheck
from openmwaa.supervisor.web_scaling import ScalingRules
from openmwaa.supervisor.worker_scaling import WorkerScalingRules
from openmwaa.upstream.balancer import Lease


class EnvironmentNotRunningError(Exception):
    """The environment has no prepared Airflow to run a command with."""


class Supervisor:
    def __init__(
        self,
        *,
        runtimes: RuntimeManager,
        on_event: Callable[[EnvironmentEvent], None],
        start_timeout: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        policy: RestartPolicy | None = None,
        hang_timeout: float = 0.0,
        isolate: bool = False,
        scaling: ScalingRules | None = None,
        backends: BackendCheck | None = None,
        worker_scaling: WorkerScalingRules | None = None,
        worker_graceful_timeout: float = Timings.graceful_worker_stop,
        reaper: Reaper | None = None,
    ) -> None:
        """``isolate``: run each environment as a system user of its own (needs root; runtime/isolation).
        ``backends``: what is wrong with the PostgreSQL and Redis servers right now (an
        environment using one that is down is UNAVAILABLE until it is back).
        ``worker_graceful_timeout``: how long a worker replaced GRACEFULly, or scaled in, may
        take to finish its running tasks.
        ``reaper``: told of every component session, ends them if openmwaa dies (supervisor.reaper)."""
        self._backends = backends
        self._timings = Timings(
            graceful_worker_stop=worker_graceful_timeout, worker_drain_timeout=worker_graceful_timeout
        )
        self._worker_scaling = worker_scaling
        self._runtimes = runtimes
        self._isolate = isolate
        self._hang_timeout = hang_timeout
        self._scaling = scaling
        self._on_event = on_event
        self._start_timeout = start_timeout
        self._clock = clock
        self._policy = policy
        self._reaper = reaper
        self._runners: dict[str, EnvironmentRunner] = {}
        self._lock = threading.Lock()
        self._closed = False

    # Lifecycle (non-blocking) ------------------------------------------------------------

    def create(self, spec: EnvironmentSpec) -> None:
        """Install the runtime, prepare, start and wait healthy -> "available" or "create_failed"."""
        self._submit(spec.key, Create(spec))

    def update(
        self, spec: EnvironmentSpec, previous: EnvironmentSpec, *, worker_replacement: str = "FORCED"
    ) -> None:
        """Restart what must -> "available"; on failure bring ``previous`` back and "update_failed".

        ``worker_replacement``: GRACEFUL lets the workers' running tasks finish before they restart.
        """
        self._submit(spec.key, Update(spec, previous, worker_replacement))

    def resume(self, spec: EnvironmentSpec) -> None:
        """After a restart: end leftover processes, start, wait healthy -> "available"/"unavailable"."""
        self._submit(spec.key, Resume(spec))

    def delete(self, key: str, home: Path, database_url: str | None) -> None:
        """Stop the processes, remove files and the PostgreSQL database -> "deleted"/"delete_failed"."""
        self._submit(key, Delete(home, database_url))

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every environment's processes (files are kept); blocks up to ``timeout``."""
        with self._lock:
            self._closed = True
            runners = list(self._runners.values())
            self._runners.clear()
        for runner in runners:
            runner.submit(Shutdown())
        deadline = time.monotonic() + timeout
        for runner in runners:
            runner.join(max(0.0, deadline - time.monotonic()))
            runner.release()

    # Queries -----------------------------------------------------------------------------

    def endpoint(self, key: str) -> str | None:
        """``http://127.0.0.1:<port>`` of the environment's api-server/webserver while it runs."""
        runner = self._live_runner(key)
        return runner.endpoint() if runner else None

    def lease(self, key: str) -> Lease | None:
        """A hold on the web server replica with the fewest requests in flight (release it when done)."""
        runner = self._live_runner(key)
        return runner.lease() if runner else None

    def serving(self, key: str) -> bool:
        """Whether a web server replica of the environment is in rotation (answering) now."""
        runner = self._live_runner(key)
        return runner.serving() if runner else False

    def web_servers(self, key: str) -> int:
        """How many web server replicas the environment runs now."""
        runner = self._live_runner(key)
        return runner.web_servers() if runner else 0

    def workers(self, key: str) -> int:
        """How many Celery workers the environment runs now (distributed mode)."""
        runner = self._live_runner(key)
        return runner.workers() if runner else 0

    def airflow_major(self, key: str) -> int | None:
        runner = self._live_runner(key)
        return runner.airflow_major() if runner else None

    def run_cli(self, key: str, argv: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]:
        """Run ``airflow <argv>`` with the environment's runtime and configuration.

        On timeout the command's process group is killed and what it wrote so far is
        returned with exit code 124 (as coreutils' ``timeout`` does).
        """
        runner = self._live_runner(key)
        prepared = runner.prepared() if runner else None
        if prepared is None:
            raise EnvironmentNotRunningError(f"environment {key} is not running")
        proc = subprocess.Popen(
            prepared.runtime.airflow_command(*argv),
            env=dict(prepared.env),
            cwd=prepared.spec.home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **popen_args(prepared.user),
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return (
                124,
                out,
                err + f"\nThe command ran longer than {timeout:.0f} s and was stopped.\n".encode(),
            )
        return proc.returncode, out, err

    # Plumbing ----------------------------------------------------------------------------

    def _submit(self, key: str, command: Command) -> None:
        with self._lock:
            if self._closed:
                return
            runner = self._runners.get(key)
            if runner is None or runner.finished.is_set():
                runner = EnvironmentRunner(
                    key,
                    runtimes=self._runtimes,
                    emit=self._on_event,
                    start_timeout=self._start_timeout,
                    clock=self._clock,
                    policy=self._policy,
                    hang_timeout=self._hang_timeout,
                    isolate=self._isolate,
                    scaling=self._scaling,
                    backends=self._backends,
                    worker_scaling=self._worker_scaling,
                    timings=self._timings,
                    launcher=LocalLauncher(self._reaper),
                )
                self._runners[key] = runner
                runner.start()
            runner.submit(command)

    def _live_runner(self, key: str) -> EnvironmentRunner | None:
        with self._lock:
            runner = self._runners.get(key)
        if runner is None or runner.finished.is_set():
            return None
        return runner
