"""Celery workers in the environment runner: autoscaled on the task counts, drained without losing a
task, and replaced GRACEFULly or FORCEDly on update.

The runner's fakes (processes, provisioner, clock) come from test_supervisor_runner; the task
counts are whatever the test says, and "draining" a fake worker is recorded instead of signalled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from openmwaa.runtime.airflow_config import CeleryOptions
from openmwaa.runtime.installer import RuntimeManager
from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.commands import Create, Update
from openmwaa.supervisor.environment import EnvironmentRunner
from openmwaa.supervisor.group import ProcessHandle
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.spec import EnvironmentEvent, EnvironmentSpec
from openmwaa.supervisor.timings import Timings
from openmwaa.supervisor.worker_scaling import TaskCounts, WorkerScalingRules
from tests.unit.supervisor.test_supervisor_runner import (
    KEY,
    Clock,
    FakeLauncher,
    FakeProcess,
    FakeProvisioner,
    Probe,
    spec,
)

TIMINGS = Timings(
    health_interval=0,
    recovery_check_interval=5,
    liveness_check_interval=15,
    tick=0.01,
    worker_probe_interval=1,
    worker_drain_timeout=300,
    graceful_worker_stop=600,
)


@dataclass
class Counts:
    tasks: TaskCounts | None = field(default_factory=lambda: TaskCounts(0, 0))
    error: str | None = None

    def __call__(self, prepared: PreparedEnvironment) -> TaskCounts | None:
        self.error = None if self.tasks else "the database does not answer"
        return self.tasks


@dataclass
class Workers:
    runner: EnvironmentRunner
    clock: Clock
    launcher: FakeLauncher
    counts: Counts
    events: list[EnvironmentEvent]
    spec: EnvironmentSpec
    drained: list[str] = field(default_factory=list)
    #: What a drained fake worker does: exit at once (its tasks were done), or run on.
    finish_when_drained: bool = False

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.now += seconds
        self.runner.run_once(None)

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.tick()

    def live(self) -> list[str]:
        return sorted(p.name for p in self.launcher.spawned if p.code is None and p.name.startswith("worker"))

    def drain(self, handle: ProcessHandle) -> None:
        self.drained.append(handle.name)
        if self.finish_when_drained:
            assert isinstance(handle, FakeProcess)
            handle.code = 0


def make(tmp_path: Path, *, low: int = 1, high: int = 4) -> Workers:
    clock = Clock()
    launcher, counts = FakeLauncher(), Counts()
    events: list[EnvironmentEvent] = []
    runner = EnvironmentRunner(
        KEY,
        runtimes=RuntimeManager(tmp_path / "unused"),
        emit=events.append,
        start_timeout=60,
        clock=clock,
        policy=RestartPolicy(base_delay=1, max_delay=60, window=120, max_restarts=3),
        probe=Probe(clock, cost=0),
        timings=TIMINGS,
        launcher=launcher,
        provisioner=FakeProvisioner(),
        worker_scaling=WorkerScalingRules(up_window=5, down_window=30),
        count_tasks=counts,
        warmup=lambda _url, _major: lambda: True,
    )
    s = replace(
        spec(tmp_path),
        celery=CeleryOptions(broker_url="redis://127.0.0.1:1/0", queue="openmwaa-env-q", max_workers=high),
        workers=(low, high),
    )
    w = Workers(runner, clock, launcher, counts, events, s)
    runner._workers._drain = w.drain
    runner.run_once(Create(s))
    assert [e.kind for e in events if e.kind != "progress"] == ["available"]
    return w


def test_min_workers_start_with_the_environment_and_idle_adds_none(tmp_path: Path) -> None:
    w = make(tmp_path, low=2)
    w.run(120)
    assert w.live() == ["worker", "worker-1"]
    assert w.runner.workers() == 2


def test_queued_tasks_add_workers_up_to_max(tmp_path: Path) -> None:
    w = make(tmp_path)
    w.counts.tasks = TaskCounts(queued=30, running=5)  # 35 tasks at 5 a worker (mw1.small) want 7
    w.run(7)
    assert w.live() == ["worker", "worker-1", "worker-2", "worker-3"]
    assert w.runner.workers() == 4


def test_extra_workers_drain_once_idle_and_are_never_killed_mid_task(tmp_path: Path) -> None:
    w = make(tmp_path)
    w.counts.tasks = TaskCounts(queued=30, running=5)
    w.run(7)
    w.counts.tasks = TaskCounts(queued=0, running=2)
    w.run(100)
    assert w.drained == [], "a task still runs: every worker stays"
    w.counts.tasks = TaskCounts(0, 0)
    w.run(31)
    assert sorted(w.drained) == ["worker-1", "worker-2", "worker-3"]
    assert w.launcher.stopped() == [], "asked to finish their tasks, not stopped"
    assert w.runner.workers() == 4, "draining workers still count until they end"
    w.launcher.live("worker-2").code = 0  # its tasks are done: Celery's warm shutdown ends it
    w.tick()
    assert w.launcher.stopped() == ["worker-2"], "reaped"
    assert w.runner.workers() == 3
    w.run(60)
    assert "worker-2" not in w.live(), "an exit after a drain is no crash: not restarted"


def test_a_drain_that_outlasts_its_bound_is_stopped(tmp_path: Path) -> None:
    w = make(tmp_path, high=2)
    w.counts.tasks = TaskCounts(queued=10, running=0)
    w.run(7)
    w.counts.tasks = TaskCounts(0, 0)
    w.run(31)
    assert w.drained == ["worker-1"]
    w.run(299)
    assert w.launcher.stopped() == []
    w.run(2)
    assert w.launcher.stopped() == ["worker-1"]
    assert w.live() == ["worker"]


def test_a_worker_scaled_up_again_while_another_drains_gets_a_name_of_its_own(tmp_path: Path) -> None:
    w = make(tmp_path, high=2)
    w.counts.tasks = TaskCounts(queued=10, running=0)
    w.run(7)
    w.counts.tasks = TaskCounts(0, 0)
    w.run(31)
    assert w.drained == ["worker-1"]
    w.counts.tasks = TaskCounts(queued=10, running=0)
    w.run(7)
    assert w.live() == ["worker", "worker-1", "worker-2"]


def test_unknown_task_counts_change_nothing(tmp_path: Path) -> None:
    w = make(tmp_path)
    w.counts.tasks = TaskCounts(queued=30, running=5)
    w.run(7)
    w.counts.tasks = None
    w.run(200)
    assert w.drained == [] and len(w.live()) == 4


def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    w = make(tmp_path)
    first = w.launcher.live("worker")
    first.code = -9
    w.run(3)
    assert w.live() == ["worker"] and w.launcher.live("worker") is not first
    assert [e.kind for e in w.events if e.kind not in ("progress",)] == ["available"]


def updated(w: Workers, strategy: str) -> None:
    new = replace(w.spec, airflow_config={"core.default_task_retries": "2"})
    w.runner.run_once(Update(new, w.spec, strategy))


def test_graceful_replacement_lets_every_worker_finish_before_it_restarts(tmp_path: Path) -> None:
    w = make(tmp_path)
    w.counts.tasks = TaskCounts(queued=12, running=0)
    w.run(12)
    assert len(w.live()) == 3
    old = {p.name: p for p in w.launcher.spawned if p.code is None and p.name.startswith("worker")}
    w.finish_when_drained = True
    w.counts.tasks = TaskCounts(queued=0, running=0)  # what the drained workers finish
    updated(w, "GRACEFUL")
    assert sorted(w.drained) == ["worker", "worker-1", "worker-2"]
    assert all(p.code == 0 for p in old.values()), "they ended by themselves, tasks done"
    assert w.launcher.interrupts == [], "no task was ended"
    assert [e.kind for e in w.events if e.kind != "progress"][-1] == "available"
    assert w.live() == ["worker"], "MinWorkers again; the autoscaler adds the others"


def test_graceful_replacement_stops_workers_that_outlast_the_bound(tmp_path: Path) -> None:
    w = make(tmp_path)
    stuck = w.launcher.live("worker")

    def slow_drain(handle: ProcessHandle) -> None:
        w.drained.append(handle.name)
        w.clock.now += 601  # the tasks run longer than the GRACEFUL bound

    w.runner._workers._drain = slow_drain
    updated(w, "GRACEFUL")
    assert w.drained == ["worker"]
    assert stuck.code == -15, "stopped once the bound passed"
    assert w.live() == ["worker"]


def test_forced_replacement_stops_the_workers_at_once(tmp_path: Path) -> None:
    w = make(tmp_path)
    w.counts.tasks = TaskCounts(queued=12, running=0)
    w.run(7)
    old = [p for p in w.launcher.spawned if p.code is None and p.name.startswith("worker")]
    updated(w, "FORCED")
    assert w.drained == []
    # Their tasks were ended first, while the workers still ran (so that Airflow's supervisors
    # in them tell Airflow how the tasks ended, and Airflow retries them at once).
    assert w.launcher.interrupts == [
        ([("worker", None), ("worker-1", None), ("worker-2", None)], TIMINGS.forced_task_grace)
    ]
    assert all(p.code == -15 for p in old)
    # New workers only (the old ones were stopped), as many as the 12 tasks still queued need:
    # the autoscaler adds them as soon as the environment is back, not an up window later.
    assert w.live() == ["worker", "worker-1", "worker-2"]


def test_a_lower_max_workers_drains_the_extra_workers_instead_of_killing_them(tmp_path: Path) -> None:
    w = make(tmp_path)
    w.counts.tasks = TaskCounts(queued=30, running=5)
    w.run(7)
    assert len(w.live()) == 4
    w.runner.run_once(Update(replace(w.spec, workers=(1, 2)), w.spec))
    w.tick()
    assert sorted(w.drained) == ["worker-2", "worker-3"]
    assert w.launcher.stopped() == []
