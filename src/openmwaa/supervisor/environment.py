"""One environment's supervisor: a thread that owns its processes and reconciles them.

Commands (create, update, resume, delete, shutdown) arrive on a queue; the thread hands them
one at a time to the environment's :class:`~openmwaa.supervisor.lifecycle.Lifecycle` and,
between commands, lets its :class:`~openmwaa.supervisor.watch.Watcher` compare what should run
with what does. Every process is started from this one thread, which lives as long as the
environment's processes do (PR_SET_PDEATHSIG is tied to the thread that forked).

How processes start, how the environment is provisioned, how health is probed, the clock
and every interval are passed in, so the whole runner is tested with fakes in milliseconds.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from openmwaa.runtime.installer import RuntimeManager
from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.commands import Command, Delete, Shutdown
from openmwaa.supervisor.components import ComponentSpec
from openmwaa.supervisor.group import ComponentGroup, ProcessHandle
from openmwaa.supervisor.health import HealthProbe
from openmwaa.supervisor.launcher import LocalLauncher, ProcessLauncher
from openmwaa.supervisor.lifecycle import Lifecycle
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.provision import LocalProvisioner, Provisioner
from openmwaa.supervisor.reporter import Reporter
from openmwaa.supervisor.spec import EnvironmentEvent
from openmwaa.supervisor.task_counts import TaskCounter
from openmwaa.supervisor.timings import Timings
from openmwaa.supervisor.watch import BackendCheck, Probe, Watcher
from openmwaa.supervisor.web_replicas import Warmup, WebReplicas
from openmwaa.supervisor.web_scaling import ScalingPolicy, ScalingRules
from openmwaa.supervisor.worker_replicas import CountTasks, WorkerReplicas
from openmwaa.supervisor.worker_scaling import WorkerScalingPolicy, WorkerScalingRules
from openmwaa.upstream.balancer import Lease


class EnvironmentRunner:
    def __init__(
        self,
        key: str,
        *,
        runtimes: RuntimeManager,
        emit: Callable[[EnvironmentEvent], None],
        start_timeout: float,
        clock: Callable[[], float],
        policy: RestartPolicy | None = None,
        probe: Probe | None = None,
        hang_timeout: float = 0.0,
        timings: Timings | None = None,
        launcher: ProcessLauncher | None = None,
        provisioner: Provisioner | None = None,
        isolate: bool = False,
        scaling: ScalingRules | None = None,
        replica_probe: Probe | None = None,
        backends: BackendCheck | None = None,
        worker_scaling: WorkerScalingRules | None = None,
        count_tasks: CountTasks | None = None,
        warmup: Warmup | None = None,
    ) -> None:
        """``backends``: what is wrong with the database and broker servers right now (watch.py);
        ``warmup``: asked to warm the environment's own web server (web_replicas)."""
        self.key = key
        self._timings = timings or Timings()
        self._own_probes: list[HealthProbe] = []
        if probe is None:
            probe = HealthProbe()
            self._own_probes.append(probe)
        elif replica_probe is None:
            replica_probe = probe
        if replica_probe is None:
            # Short: a replica that takes longer to answer its health check is out of rotation.
            replica_probe = HealthProbe(timeout=2.0)
            self._own_probes.append(replica_probe)
        self._clock = clock
        launcher = launcher or LocalLauncher()
        self._launcher = launcher
        reporter = Reporter(key, emit)
        self._commands: queue.Queue[Command] = queue.Queue()
        self._interrupt = threading.Event()
        self._group = ComponentGroup(self._spawn, self._stop, policy)
        self._watcher = Watcher(
            reporter,
            group=self._group,
            launcher=launcher,
            probe=probe,
            clock=clock,
            timings=self._timings,
            hang_timeout=hang_timeout,
            backends=backends,
        )
        self._replicas = WebReplicas(
            key,
            group=self._group,
            launcher=launcher,
            probe=replica_probe,
            clock=clock,
            probe_interval=self._timings.replica_probe_interval,
            hang_timeout=hang_timeout,
            hung_stop_grace=self._timings.hung_stop_grace,
            policy=ScalingPolicy(scaling),
            warmup=warmup,
        )
        self._task_counter: TaskCounter | None = None
        if count_tasks is None:
            self._task_counter = count_tasks = TaskCounter()
        self._workers = WorkerReplicas(
            key,
            group=self._group,
            clock=clock,
            count_tasks=count_tasks,
            probe_interval=self._timings.worker_probe_interval,
            drain_timeout=self._timings.worker_drain_timeout,
            policy=WorkerScalingPolicy(worker_scaling),
        )
        self._lifecycle = Lifecycle(
            reporter,
            provisioner=provisioner or LocalProvisioner(runtimes, isolate=isolate),
            launcher=launcher,
            group=self._group,
            watcher=self._watcher,
            probe=probe,
            clock=clock,
            start_timeout=start_timeout,
            interrupt=self._interrupt,
            timings=self._timings,
            replicas=self._replicas,
            workers=self._workers,
        )
        self._thread = threading.Thread(target=self._run, name=f"openmwaa-env:{key}", daemon=True)
        self.finished = threading.Event()

    # Called from other threads -----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, command: Command) -> None:
        if isinstance(command, Delete | Shutdown):
            self._interrupt.set()
        self._commands.put(command)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def endpoint(self) -> str | None:
        return self._lifecycle.endpoint

    def lease(self) -> Lease | None:
        """A hold on the web server replica to send the next request to (None while none runs)."""
        endpoint = self._lifecycle.endpoint
        return self._replicas.lease(endpoint) if endpoint is not None else None

    def serving(self) -> bool:
        """Whether a web server replica is in rotation: during an update's rolling restart too."""
        return self._lifecycle.endpoint is not None and bool(self._replicas.pool.members())

    def web_servers(self) -> int:
        """Web server replicas running now."""
        return self._replicas.count() if self._lifecycle.endpoint is not None else 0

    def workers(self) -> int:
        """Celery workers running now (distributed mode; draining ones included)."""
        return self._workers.count() if self._lifecycle.endpoint is not None else 0

    def airflow_major(self) -> int | None:
        return self._lifecycle.major

    def prepared(self) -> PreparedEnvironment | None:
        return self._lifecycle.prepared

    def release(self) -> None:
        self._lifecycle.release()
        self._replicas.release()

    # The loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    command: Command | None = self._commands.get(timeout=self._timings.tick)
                except queue.Empty:
                    command = None
                if not self.run_once(command):
                    return
        finally:
            self._replicas.restore_priority()
            for probe in self._own_probes:
                probe.close()
            if self._task_counter is not None:
                self._task_counter.close()
            self.finished.set()

    def run_once(self, command: Command | None) -> bool:
        """One turn of the loop: handle ``command`` if any, then reconcile; False once it has ended.

        The runner's thread calls it; tests call it directly, with fakes and a fake clock.
        """
        if command is not None:
            self._replicas.restore_priority()  # a step starts or stops processes its own way
        if isinstance(command, Shutdown):
            self._lifecycle.stop_everything()
            return False
        if isinstance(command, Delete):
            self._lifecycle.delete(command)
            return False
        if command is not None:
            self._lifecycle.handle(command)
        prepared = self._lifecycle.prepared
        if prepared is not None and not self._interrupt.is_set():
            self._watcher.reconcile(prepared, self._replicas.pool.members())
            self._replicas.reconcile(prepared, available=not self._watcher.unavailable)
            self._workers.reconcile(prepared, available=not self._watcher.unavailable)
        return True

    # The group's process plumbing ----------------------------------------------------------

    def _spawn(self, component: ComponentSpec, now: float) -> ProcessHandle:
        prepared = self._lifecycle.prepared
        assert prepared is not None  # the group starts nothing before an environment is prepared
        return self._launcher.spawn(component, prepared, now)

    def _stop(self, handles: Sequence[ProcessHandle]) -> None:
        self._replicas.leaving(handles)
        self._launcher.stop(handles, grace=self._timings.stop_grace)
