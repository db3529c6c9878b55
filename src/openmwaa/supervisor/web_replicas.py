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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from openmwaa.supervisor.components import ComponentSpec, web_kind, web_replica
from openmwaa.supervisor.group import ComponentGroup, ProcessHandle
from openmwaa.supervisor.launcher import ProcessLauncher
from openmwaa.supervisor.loopback_ports import allocate_ports, release_ports
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.watch import Probe
from openmwaa.supervisor.watchdog import HangWatch
from openmwaa.supervisor.web_scaling import ScalingPolicy
from openmwaa.upstream.balancer import Lease, ReplicaSet, untracked_lease

log = logging.getLogger(__name__)


def replica_url(spec: ComponentSpec) -> str:
    return f"http://127.0.0.1:{spec.port}"


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
        self._ports: dict[int, int] = {}  # extra replicas' ports, kept for the environment's life
        self._next_probe: dict[str, float] = {}
        #: Replica name -> pid of the process that has answered its health endpoint.
        self._answered: dict[str, int] = {}
        self._draining: set[str] = set()
        self.wanted = 1

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
        """The environment (re)started: one replica runs, the others follow the policy afresh."""
        self.wanted = 1
        self._draining.clear()
        self._hangs.reset()
        self._policy.reset(now)

    def release(self) -> None:
        release_ports(list(self._ports.values()))
        self._ports.clear()

    def reconcile(self, prepared: PreparedEnvironment, *, available: bool) -> None:
        now = self._clock()
        specs = self._web_specs()
        if not specs:
            self.pool.clear()
            return
        self._check_rotation(prepared, specs, now)
        if available:
            self._scale(prepared, now)

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
                continue
            answered = kind not in self._probe(url, prepared.runtime.major).failing
            if answered:
                self._next_probe[spec.name] = now + self._probe_interval
                if self._answered.get(spec.name) != handle.pid:
                    log.info("environment %s: web server %s answers on %s", self.key, spec.name, url)
                self._answered[spec.name] = handle.pid
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
                port = self._ports.get(index) or self._allocate(1)[0]
                self._ports[index] = port
                self._group.start([web_replica(prepared.runtime, index, port)], now)
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

    def _web_specs(self) -> list[ComponentSpec]:
        return sorted((s for s in self._group.specs() if s.serves_api), key=lambda s: s.index)
