"""An environment's Celery workers between MinWorkers and MaxWorkers: autoscaled, drained gracefully.

Run from the environment's runner thread on every turn of its loop (:meth:`WorkerReplicas.reconcile`),
in distributed mode only. The lifecycle starts MinWorkers workers with the environment; once it is
AVAILABLE, every ``probe_interval`` the tasks queued and running are counted
(:mod:`~openmwaa.supervisor.task_counts`) and the
:class:`~openmwaa.supervisor.worker_scaling.WorkerScalingPolicy` says how many workers are wanted.

- Up: new workers start at once (``worker-<n>``, each its own Celery node).
- Down: a worker scaled in never loses a task. It is retired from the group (never restarted)
  and sent SIGTERM, to its main process only: Celery's warm shutdown, which stops consuming at
  once, lets the tasks it runs finish, then exits. Signalling its process group instead would
  reach the tasks too. One still running after ``drain_timeout`` is stopped.

A worker that crashes (kill -9 included) is restarted by the group with backoff, like any
component; Airflow fails or retries the task it ran, per the task's retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Protocol

from openmwaa.runtime.airflow_config import CLASS_TASK_CONCURRENCY, WORKER_CONCURRENCY_OPTION, env_name
from openmwaa.supervisor.components import WORKER_KIND, ComponentSpec, worker_replica
from openmwaa.supervisor.group import ComponentGroup, ProcessHandle
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.worker_scaling import TaskCounts, WorkerScalingPolicy

log = logging.getLogger(__name__)


class CountTasks(Protocol):
    """Counts the tasks queued and running in an environment (None: unknown, ``error`` says why)."""

    error: str | None

    def __call__(self, prepared: PreparedEnvironment) -> TaskCounts | None: ...


def warm_shutdown(handle: ProcessHandle) -> None:
    """Celery's warm shutdown: SIGTERM to the worker's main process (not to its tasks)."""
    if handle.poll() is None:  # not reaped: the pid is still this process's
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(handle.pid, signal.SIGTERM)


def worker_concurrency(prepared: PreparedEnvironment) -> int:
    """Tasks one worker runs at once: the configured concurrency, else the class's."""
    value = prepared.worker_env.get(env_name(WORKER_CONCURRENCY_OPTION)) or prepared.env.get(
        env_name(WORKER_CONCURRENCY_OPTION)
    )
    with contextlib.suppress(TypeError, ValueError):
        if value is not None and int(value) > 0:
            return int(value)
    return CLASS_TASK_CONCURRENCY.get(prepared.spec.environment_class, 5)


class WorkerReplicas:
    def __init__(
        self,
        key: str,
        *,
        group: ComponentGroup,
        clock: Callable[[], float],
        count_tasks: CountTasks,
        probe_interval: float,
        drain_timeout: float,
        policy: WorkerScalingPolicy | None = None,
        drain: Callable[[ProcessHandle], None] = warm_shutdown,
    ) -> None:
        self.key = key
        self._group = group
        self._clock = clock
        self._count_tasks = count_tasks
        self._probe_interval = probe_interval
        self._drain_timeout = drain_timeout
        self._policy = policy or WorkerScalingPolicy()
        self._drain = drain
        self._next_probe = 0.0
        #: Retired worker name -> when it must have ended.
        self._deadlines: dict[str, float] = {}
        #: Workers wanted now (None until the first decision after the environment started).
        self.wanted: int | None = None
        self.last_tasks: TaskCounts | None = None
        self._last_error: str | None = None

    # For other threads -----------------------------------------------------------------------

    def count(self) -> int:
        """Celery workers running now (draining ones included)."""
        running = self._group.running
        return sum(1 for s in self._worker_specs() if s.name in running) + len(self._deadlines)

    # For the runner thread -------------------------------------------------------------------

    def let_finish(self, handles: Sequence[ProcessHandle]) -> None:
        """Ask workers to stop taking tasks and to end once the ones they run are done."""
        for handle in handles:
            self._drain(handle)

    def reset(self, now: float) -> None:
        """The environment (re)started: MinWorkers run, the policy starts afresh."""
        self.wanted = None
        self._next_probe = now
        self._policy.reset(now)

    def reconcile(self, prepared: PreparedEnvironment, *, available: bool) -> None:
        if prepared.spec.celery is None:
            return
        now = self._clock()
        self._check_drains(now)
        if not available or now < self._next_probe:
            return
        self._next_probe = now + self._probe_interval
        self._scale(prepared, now)

    # Scaling ---------------------------------------------------------------------------------

    def _scale(self, prepared: PreparedEnvironment, now: float) -> None:
        low, high = prepared.spec.workers
        specs = self._worker_specs()
        current = self.wanted if self.wanted is not None else len(specs)
        tasks = self._count_tasks(prepared)
        if tasks is None and self._count_tasks.error != self._last_error:
            log.warning(
                "environment %s: cannot count the queued and running tasks (%s); the worker count "
                "stays as it is",
                self.key,
                self._count_tasks.error,
            )
        self._last_error = self._count_tasks.error
        self.last_tasks = tasks
        wanted = self._policy.decide(
            now, tasks, per_worker=worker_concurrency(prepared), current=current, low=low, high=high
        )
        if wanted != current:
            seen = f"{tasks.queued} queued, {tasks.running} running" if tasks else "tasks unknown"
            log.info(
                "environment %s: workers %d -> %d (%s; MinWorkers %d, MaxWorkers %d)",
                self.key,
                current,
                wanted,
                seen,
                low,
                high,
            )
        self.wanted = wanted
        if len(specs) < wanted:
            self._add(prepared, wanted - len(specs), now)
        elif len(specs) > wanted:
            self._retire(specs[wanted:], now)

    def _add(self, prepared: PreparedEnvironment, count: int, now: float) -> None:
        celery = prepared.spec.celery
        assert celery is not None
        index = 0
        new: list[ComponentSpec] = []
        while len(new) < count:
            spec = worker_replica(prepared.runtime, index, celery.queue)
            if not self._group.in_use(spec.name):
                new.append(spec)
            index += 1
        self._group.start(new, now)

    def _retire(self, specs: list[ComponentSpec], now: float) -> None:
        """Drain the workers with the highest indices: they finish their tasks, then exit."""
        for handle in self._group.retire([s.name for s in specs]):
            self._drain(handle)
            self._deadlines[handle.name] = now + self._drain_timeout
            log.info(
                "environment %s: %s stops taking tasks and ends once the ones it runs are done",
                self.key,
                handle.name,
            )

    def _check_drains(self, now: float) -> None:
        retiring = self._group.retiring
        for name in list(self._deadlines):
            if name not in retiring:
                del self._deadlines[name]
                log.info("environment %s: %s finished its tasks and stopped", self.key, name)
            elif now >= self._deadlines[name]:
                del self._deadlines[name]
                log.warning(
                    "environment %s: %s still runs tasks %.0f s after it was scaled in; stopping it",
                    self.key,
                    name,
                    self._drain_timeout,
                )
                self._group.stop_retired([name])

    def _worker_specs(self) -> list[ComponentSpec]:
        return sorted((s for s in self._group.specs() if s.kind == WORKER_KIND), key=lambda s: s.index)
