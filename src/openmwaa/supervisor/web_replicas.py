"""An environment's web server replicas: which are in rotation, how many run, and hung ones.

Run from the environment's runner thread on every turn of its loop (:meth:`WebReplicas.reconcile`):

- A replica joins the rotation (:class:`~openmwaa.upstream.balancer.ReplicaSet`) once its own
  health endpoint answers, and leaves it the moment its process stops or exits, or a probe
  gets no answer; the group restarts a crashed one with backoff, as any component.
- One that answered since it started and then stops answering for the hang timeout is stopped
  (its exit is then a crash, so it is restarted).
- The environment turns AVAILABLE on its first replica; the others (up to the count the
  :class:`~openmwaa.supervisor.web_scaling.ScalingPolicy` wants, at least MinWebservers) start
  once it is AVAILABLE. A replica scaled in drains: out of rotation at once, stopped when the
  requests it holds have finished.
- An update that changes what the web servers run restarts them one at a time
  (:meth:`WebReplicas.restart_one_at_a_time`), never with fewer in rotation than before.
- While a replica starts (scaled up, replacing a crashed one, a rolling restart's), the
  environment's other processes run in the background (see replica_priority); the replicas in
  rotation only while one the scaling added starts.
- Each process of the first replica (the environment's own port, whose execution API the tasks
  call) is warmed once it answers (see health.warm_execution_api), at a start while the other
  components start, and joins the rotation only when that is done (while it warms it answers
  nothing else); then its first task does not wait. The environment's AVAILABLE does not wait
  for it: until then requests go to that replica anyway, and wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from openmwaa.supervisor.components import ComponentSpec, web_kind, web_replica
from openmwaa.supervisor.group import ComponentGroup, ProcessHandle
from openmwaa.supervisor.health import ExecutionApiWarmup
from openmwaa.supervisor.launcher import ProcessLauncher
from openmwaa.supervisor.loopback_ports import allocate_ports, release_ports
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.replica_priority import ReplicaPriority
from openmwaa.supervisor.watch import Probe
from openmwaa.supervisor.watchdog import HangWatch
from openmwaa.supervisor.web_scaling import ScalingPolicy
from openmwaa.upstream.balancer import Lease, ReplicaSet, untracked_lease

log = logging.getLogger(__name__)


class Waiter(Protocol):
    """Blocks the runner until ``done()`` is true (True), or ``within`` seconds pass (False).

    Raises StartFailure when a process named in ``starting`` exits or the step's deadline
    passes, and Interrupted when a delete or shutdown arrives.
    """

    def __call__(
        self, done: Callable[[], bool], *, starting: Sequence[str] = (), within: float | None = None
    ) -> bool: ...


def replica_url(spec: ComponentSpec) -> str:
    return f"http://127.0.0.1:{spec.port}"


#: Asked to warm a web server (its URL, the Airflow major version); returns at once a function
#: that says whether the warm-up is over.
Warmup = Callable[[str, int], Callable[[], bool]]


class WebReplicas:
    def __init__(
        self,
        key: str,
        *,
        group: ComponentGroup,
        launcher: ProcessLauncher,
        probe: Probe,
        clock: Callable[[], float],
        probe_interval: float,
        hang_timeout: float,
        hung_stop_grace: float,
        policy: ScalingPolicy | None = None,
        allocate: Callable[[int], list[int]] = allocate_ports,
        drain_timeout: float = 30.0,
        warmup: Warmup | None = None,
    ) -> None:
        self.key = key
        self.pool = ReplicaSet(clock)
        self._group = group
        self._launcher = launcher
        self._probe = probe
        self._clock = clock
        self._probe_interval = probe_interval
        self._hung_stop_grace = hung_stop_grace
        self._hangs = HangWatch(hang_timeout)
        self._policy = policy or ScalingPolicy()
        self._allocate = allocate
        self._drain_timeout = drain_timeout
        self._ports: dict[int, int] = {}  # extra replicas' ports, kept for the environment's life
        self._next_probe: dict[str, float] = {}
        #: Replica name -> pid of the process that has answered its health endpoint.
        self._answered: dict[str, int] = {}
        self._draining: set[str] = set()
        self._priority = ReplicaPriority(launcher, clock)
        #: Replicas the scaling started that have not answered yet (not replacements of crashed ones).
        self._added: set[str] = set()
        self.wanted = 1
        self._warmup = warmup or ExecutionApiWarmup()
        #: The first replica's process being (or last) warmed: its pid, and whether that is over.
        self._warming: tuple[int, Callable[[], bool]] | None = None

    # For other threads -----------------------------------------------------------------------

    def lease(self, fallback: str | None) -> Lease | None:
        """A lease on the replica with the fewest requests in flight, else on ``fallback``."""
        lease = self.pool.acquire()
        if lease is None and fallback is not None:
            return untracked_lease(fallback)
        return lease

    def count(self) -> int:
        """Web server replicas running now (draining ones included)."""
        return sum(1 for s in self._web_specs() if s.name in self._group.running)

    # For the runner thread -------------------------------------------------------------------

    def leaving(self, handles: Sequence[ProcessHandle]) -> None:
        """Called before processes are stopped: no new request may go to a replica among them."""
        specs = {s.name: s for s in self._web_specs()}
        for handle in handles:
            spec = specs.get(handle.name)
            if spec is not None:
                self.pool.remove(replica_url(spec))
                self._answered.pop(spec.name, None)

    def reset(self, now: float) -> None:
        """A lifecycle step ended: the replicas it left running are wanted (one after a start,
        all of them after a rolling restart); the policy's load history starts afresh."""
        self.wanted = max(1, sum(1 for s in self._web_specs() if s.name not in self._draining))
        self._draining.clear()
        self._hangs.reset()
        self._policy.reset(now)

    def restore_priority(self) -> None:
        """Set back every process lowered for a starting replica (a lifecycle step, shutdown or
        error comes; the next :meth:`reconcile` lowers them again if a replica still starts)."""
        self._priority.restore()

    def warmed(self, prepared: PreparedEnvironment, spec: ComponentSpec | None = None) -> bool:
        """Whether replica ``spec`` (by default the first) is warm; call once it answers: the first
        replica's process is then warmed once (see the module), the others need not be."""
        if spec is None:
            spec = next((s for s in self._web_specs() if s.index == 0), None)
        if spec is None or spec.index != 0:
            return True
        handle = self._group.running.get(spec.name)
        if handle is None:
            return False
        if self._warming is None or self._warming[0] != handle.pid:
            self._warming = (handle.pid, self._warmup(replica_url(spec), prepared.runtime.major))
        return self._warming[1]()

    def release(self) -> None:
        release_ports(list(self._ports.values()))
        self._ports.clear()

    def reconcile(self, prepared: PreparedEnvironment, *, available: bool) -> None:
        now = self._clock()
        specs = self._web_specs()
        if not specs:
            self.pool.clear()
            self._priority.restore()
            return
        self._check_rotation(prepared, specs, now)
        if available:
            self._scale(prepared, now)
        starting = self._starting()
        self._added &= set(starting)
        serving = [] if self._added else [s.name for s in specs]
        self._priority.update(self._group.running, starting, spared=serving)

    def _starting(self) -> list[str]:
        """Replicas that run and have not answered since they started (draining ones aside)."""
        running = self._group.running
        return [
            s.name
            for s in self._web_specs()
            if (handle := running.get(s.name)) is not None
            and handle.poll() is None
            and s.name not in self._draining
            and self._answered.get(s.name) != handle.pid
        ]

    # Rotation --------------------------------------------------------------------------------

    def _check_rotation(self, prepared: PreparedEnvironment, specs: list[ComponentSpec], now: float) -> None:
        running = self._group.running
        kind = web_kind(prepared.runtime.major)
        silent = []
        for spec in specs:
            url = replica_url(spec)
            handle = running.get(spec.name)
            if handle is None or spec.name in self._draining or handle.poll() is not None:
                self.pool.remove(url)
                self._answered.pop(spec.name, None)
                continue
            if now < self._next_probe.get(spec.name, 0.0):
                if self._answered.get(spec.name) == handle.pid and self.warmed(prepared, spec):
                    self.pool.add(url)  # answered while it warmed: in rotation once warm
                continue
            answered = kind not in self._probe(url, prepared.runtime.major).failing
            if answered:
                self._next_probe[spec.name] = now + self._probe_interval
                if self._answered.get(spec.name) != handle.pid:
                    log.info("environment %s: web server %s answers on %s", self.key, spec.name, url)
                self._answered[spec.name] = handle.pid
                if self.warmed(prepared, spec):
                    self.pool.add(url)
            else:
                self._next_probe.pop(spec.name, None)  # probe again on the next turn
                self.pool.remove(url)
                if self._answered.get(spec.name) == handle.pid:
                    silent.append(spec.name)  # answered since it started, and no longer does
        for name in self._hangs.observe(silent, now):
            log.warning(
                "environment %s: web server %s has not answered for %.0f s; restarting it",
                self.key,
                name,
                self._hangs.timeout,
            )
            handle = self._group.running.get(name)
            if handle is not None:
                self._answered.pop(name, None)
                self._launcher.stop([handle], grace=self._hung_stop_grace)

    # Scaling ---------------------------------------------------------------------------------

    def _scale(self, prepared: PreparedEnvironment, now: float) -> None:
        low, high = prepared.spec.web_servers
        before = self.wanted
        self.wanted = self._policy.decide(now, self.pool.busy_seconds(), self.wanted, low, high)
        if self.wanted != before:
            log.info(
                "environment %s: web servers %d -> %d (MinWebservers %d, MaxWebservers %d)",
                self.key,
                before,
                self.wanted,
                low,
                high,
            )
        known = {s.index: s for s in self._web_specs()}
        for index in range(1, self.wanted):
            spec = known.get(index)
            if spec is None:
                self._added.add(self._start_replica(prepared, index, now).name)
            else:
                self._draining.discard(spec.name)
        for index, spec in known.items():
            if index >= self.wanted and index > 0:
                self._draining.add(spec.name)
                url = replica_url(spec)
                self.pool.remove(url)
                if self.pool.in_flight(url) == 0:
                    self._draining.discard(spec.name)
                    self._group.remove([spec.name])
                    log.info("environment %s: web server %s drained and stopped", self.key, spec.name)

    def _start_replica(self, prepared: PreparedEnvironment, index: int, now: float) -> ComponentSpec:
        port = self._ports.get(index) or self._allocate(1)[0]
        self._ports[index] = port
        spec = web_replica(prepared.runtime, index, port)
        self._group.start([spec], now)
        return spec

    # Rolling restart -------------------------------------------------------------------------

    def restart_one_at_a_time(self, prepared: PreparedEnvironment, wait: Waiter) -> None:
        """Restart every replica with ``prepared``'s configuration, never fewer in rotation than before.

        A spare replica starts first. Once it answers, each replica in turn drains (no new
        requests; those it holds finish, up to the drain timeout), stops, and starts again on
        its own port (the first replica's port is the environment's, which tasks and the
        health check use); the next goes only once it answers. Then the spare drains and stops.
        Replicas that were draining already finish draining and stop first.
        """
        specs = self._web_specs()
        for spec in specs:
            if spec.name in self._draining:
                self._drain(spec, wait)
                self._draining.discard(spec.name)
                self._group.remove([spec.name])
        old = [s for s in specs if s.name not in self._draining and s.name in self._group.running]
        spare = self._start_replica(prepared, max((s.index for s in specs), default=0) + 1, self._clock())
        self._await_answer(prepared, spare, wait)
        for spec in old:
            assert spec.port is not None  # every web server replica has one
            self._drain(spec, wait)
            self._group.stop([spec.name])
            self._group.start([web_replica(prepared.runtime, spec.index, spec.port)], self._clock())
            self._await_answer(prepared, spec, wait)
        self._drain(spare, wait)
        self._group.remove([spare.name])
        log.info("environment %s: web servers restarted one at a time (%d)", self.key, len(old))

    def _await_answer(self, prepared: PreparedEnvironment, spec: ComponentSpec, wait: Waiter) -> None:
        url = replica_url(spec)
        kind = web_kind(prepared.runtime.major)
        self._priority.update(self._group.running, [spec.name])
        try:
            wait(lambda: kind not in self._probe(url, prepared.runtime.major).failing, starting=[spec.name])
            wait(lambda: self.warmed(prepared, spec), starting=[spec.name])
        finally:
            self._priority.restore()
        self._answered[spec.name] = self._group.running[spec.name].pid
        self._next_probe[spec.name] = self._clock() + self._probe_interval
        self.pool.add(url)
        log.info("environment %s: web server %s answers on %s", self.key, spec.name, url)

    def _drain(self, spec: ComponentSpec, wait: Waiter) -> None:
        url = replica_url(spec)
        self.pool.remove(url)
        if not wait(lambda: self.pool.in_flight(url) == 0, within=self._drain_timeout):
            log.warning(
                "environment %s: web server %s still held requests after %.0f s; stopping it",
                self.key,
                spec.name,
                self._drain_timeout,
            )

    def _web_specs(self) -> list[ComponentSpec]:
        return sorted((s for s in self._group.specs() if s.serves_api), key=lambda s: s.index)
