"""Web server replicas in the environment runner: started after AVAILABLE, rotation, crash, hang, scaling.

The runner's fakes (processes, provisioner, clock) come from test_supervisor_runner; each
replica's health check answers per URL, so one replica can fail while the others answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from openmwaa.runtime.installer import RuntimeManager
from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.commands import Create, Update
from openmwaa.supervisor.components import ComponentSpec
from openmwaa.supervisor.environment import EnvironmentRunner
from openmwaa.supervisor.group import ProcessHandle
from openmwaa.supervisor.health import HealthReport
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.spec import EnvironmentEvent
from openmwaa.supervisor.web_scaling import ScalingRules
from tests.unit.supervisor.test_supervisor_runner import (
    HEALTHY,
    KEY,
    TIMINGS,
    Clock,
    FakeLauncher,
    FakeProcess,
    FakeProvisioner,
    Probe,
    spec,
)

SILENT = HealthReport(False, "the web server does not answer yet", ("api-server",))


@dataclass
class ReplicaProbe:
    """Every replica answers unless its URL is in ``silent``."""

    silent: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def __call__(self, base_url: str, major: int) -> HealthReport:
        self.asked.append(base_url)
        return SILENT if base_url in self.silent else HEALTHY


@dataclass
class Replicas:
    runner: EnvironmentRunner
    clock: Clock
    launcher: FakeLauncher
    probe: ReplicaProbe
    events: list[EnvironmentEvent]
    #: (URL, Airflow major version) of each warm-up asked for.
    warmed: list[tuple[str, int]]
    #: Whether a warm-up asked for is over (all of them at once).
    warm: list[bool]
    #: Each time one was asked whether it is over: whether the environment was not AVAILABLE yet.
    polls: list[bool]

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.now += seconds
        self.runner.run_once(None)

    def web(self) -> list[str]:
        return sorted(p.name for p in self.launcher.spawned if p.code is None and p.name.startswith("api-"))

    def rotation(self) -> list[str]:
        return self.runner._replicas.pool.members()


def make(
    tmp_path: Path, *, low: int, high: int, hang_timeout: float = 0.0, warm_at_start: bool = True
) -> Replicas:
    """``warm_at_start``: whether the warm-ups are over (``Replicas.warm`` changes it later)."""
    clock = Clock()
    launcher, probe = FakeLauncher(), ReplicaProbe()
    events: list[EnvironmentEvent] = []
    warmed: list[tuple[str, int]] = []
    warm: list[bool] = [warm_at_start]
    polls: list[bool] = []

    def warmup(url: str, major: int) -> Callable[[], bool]:
        warmed.append((url, major))

        def over() -> bool:
            polls.append(not any(e.kind == "available" for e in events))
            return warm[0]

        return over

    ports = iter(range(9001, 9100))
    runner = EnvironmentRunner(
        KEY,
        runtimes=RuntimeManager(tmp_path / "unused"),
        emit=events.append,
        start_timeout=60,
        clock=clock,
        policy=RestartPolicy(base_delay=1, max_delay=60, window=120, max_restarts=3),
        probe=Probe(clock, cost=0),
        replica_probe=probe,
        hang_timeout=hang_timeout,
        timings=TIMINGS,
        launcher=launcher,
        provisioner=FakeProvisioner(),
        scaling=ScalingRules(up_window=10, down_window=60),
        warmup=warmup,
    )
    runner._replicas._allocate = lambda n: [next(ports) for _ in range(n)]
    s = spec(tmp_path)
    runner.run_once(Create(replace(s, web_servers=(low, high))))
    assert [e.kind for e in events if e.kind != "progress"] == ["available"]
    return Replicas(runner, clock, launcher, probe, events, warmed, warm, polls)


def first_url(r: Replicas) -> str:
    return f"http://127.0.0.1:{r.runner._replicas._web_specs()[0].port}"


def test_available_on_the_first_replica_and_the_others_start_right_after(tmp_path: Path) -> None:
    r = make(tmp_path, low=3, high=3)
    # The create step ends AVAILABLE with one; the same turn's reconcile starts the others.
    assert r.launcher.names() == [
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "api-server-1",
        "api-server-2",
    ]
    r.tick()
    assert r.web() == ["api-server", "api-server-1", "api-server-2"]
    r.tick()
    assert len(r.rotation()) == 3 and len(set(r.rotation())) == 3
    assert r.runner.web_servers() == 3


def test_a_crashed_replica_leaves_rotation_at_once_and_is_restarted(tmp_path: Path) -> None:
    r = make(tmp_path, low=2, high=2)
    r.tick()
    r.tick()
    assert len(r.rotation()) == 2
    crashed = r.launcher.live("api-server-1")
    crashed.code = -9
    r.tick(0.01)
    assert len(r.rotation()) == 1
    leases = [r.runner.lease() for _ in range(4)]
    assert {lease.url for lease in leases if lease} == set(r.rotation())
    r.tick(2)  # backoff over: restarted, and back in rotation once it answers
    r.tick(0.01)
    assert r.launcher.live("api-server-1").pid != crashed.pid
    assert len(r.rotation()) == 2


def test_a_silent_replica_leaves_rotation_and_is_stopped_after_the_hang_timeout(tmp_path: Path) -> None:
    r = make(tmp_path, low=2, high=2, hang_timeout=30)
    r.tick()
    r.tick()
    second = [u for u in r.rotation() if u.endswith(":9001")]
    assert second
    r.probe.silent.add(second[0])
    r.tick(2)  # the next probe of a replica in rotation
    assert second[0] not in r.rotation()
    assert "api-server-1" not in r.launcher.stopped()
    for _ in range(31):
        r.tick(1)
    assert "api-server-1" in r.launcher.stopped()


def test_a_replica_that_never_answered_is_not_called_hung(tmp_path: Path) -> None:
    r = make(tmp_path, low=2, high=2, hang_timeout=30)
    r.probe.silent.add("http://127.0.0.1:9001")
    for _ in range(60):
        r.tick(1)
    assert "api-server-1" not in r.launcher.stopped()
    assert len(r.rotation()) == 1


def test_load_adds_replicas_and_idle_drains_them_after_their_requests(tmp_path: Path) -> None:
    r = make(tmp_path, low=1, high=3)
    held = [r.runner.lease() for _ in range(3)]  # three requests in flight, for good
    for _ in range(12):
        r.tick(1)
    assert r.web() == ["api-server", "api-server-1", "api-server-2"]
    for _ in range(3):
        r.tick(1)
    assert len(r.rotation()) == 3
    for lease in held:
        assert lease is not None
        lease.release()
    busy = r.runner.lease()  # one request left, on some replica
    assert busy is not None
    for _ in range(200):
        r.tick(1)
    # Down to one... but never by stopping the replica that still holds a request.
    assert busy.url in r.rotation() or r.runner._replicas.pool.in_flight(busy.url) == 1
    busy.release()
    for _ in range(200):
        r.tick(1)
    assert r.web() == ["api-server"] and r.runner.web_servers() == 1


# Rolling restart ---------------------------------------------------------------------------


def rotation_at_each_stop(r: Replicas) -> list[tuple[list[str], list[str]]]:
    """Record, at every stop of web servers, (the names stopped, the replicas in rotation just before)."""
    seen: list[tuple[list[str], list[str]]] = []
    stop = r.launcher.stop

    def recording(handles: Sequence[ProcessHandle], grace: float) -> None:
        if any(h.name.startswith("api-") for h in handles):
            seen.append(([h.name for h in handles], r.rotation()))
        stop(handles, grace)

    r.launcher.stop = recording  # type: ignore[method-assign]
    return seen


def web_update(r: Replicas, tmp_path: Path, low: int, high: int) -> None:
    old = replace(spec(tmp_path), web_servers=(low, high))
    new = replace(spec(tmp_path, **{"api.workers": "2"}), web_servers=(low, high))
    r.events.clear()
    r.runner.run_once(Update(new, old))
    assert [e.kind for e in r.events if e.kind != "progress"] == ["available"]


@pytest.mark.parametrize("count", [1, 2, 3])
def test_a_web_update_restarts_the_replicas_one_at_a_time_never_with_fewer_in_rotation(
    tmp_path: Path, count: int
) -> None:
    r = make(tmp_path, low=count, high=count)
    r.tick()
    r.tick()
    assert len(r.rotation()) == count
    old_pids = {p.pid for p in r.launcher.spawned if p.code is None and p.name.startswith("api-")}
    seen = rotation_at_each_stop(r)
    web_update(r, tmp_path, count, count)
    # Before each old replica (and at the end the spare) went, ``count`` others were in
    # rotation besides it: a new one had answered before an old one went.
    assert len(seen) == count + 1
    for stopped, rotation in seen:
        assert len(stopped) == 1 and len(rotation) == count, (stopped, rotation)
    spare = f"api-server-{count}"
    assert [names[0] for names, _ in seen] == [
        r.runner._replicas._web_specs()[i].name for i in range(count)
    ] + [spare]
    # Every replica now runs with the new configuration, on the port it had; the spare is gone.
    assert r.web() == sorted(["api-server"] + [f"api-server-{i}" for i in range(1, count)])
    live = [p for p in r.launcher.spawned if p.code is None and p.name.startswith("api-")]
    assert not {p.pid for p in live} & old_pids
    assert len(r.rotation()) == count and r.runner.web_servers() == count
    r.tick()
    r.tick()
    assert r.web() == sorted(p.name for p in live)  # the count the update left is kept


def test_a_rolling_restart_keeps_a_scaled_up_count(tmp_path: Path) -> None:
    r = make(tmp_path, low=1, high=3)
    held = [r.runner.lease() for _ in range(2)]
    for _ in range(12):
        r.tick(1)
    assert r.web() == ["api-server", "api-server-1"]
    for lease in held:
        assert lease is not None
        lease.release()
    r.tick()
    web_update(r, tmp_path, 1, 3)
    r.tick()
    assert r.web() == ["api-server", "api-server-1"] and len(r.rotation()) == 2


def test_a_spare_that_exits_while_starting_fails_the_update_and_the_previous_configuration_runs(
    tmp_path: Path,
) -> None:
    r = make(tmp_path, low=2, high=2)
    r.tick()
    r.tick()
    old = replace(spec(tmp_path), web_servers=(2, 2))
    new = replace(spec(tmp_path, version="3.2.1", **{"api.workers": "2"}), web_servers=(2, 2))
    spawn = r.launcher.spawn

    def broken(component: ComponentSpec, prepared: PreparedEnvironment, now: float) -> ProcessHandle:
        proc = spawn(component, prepared, now)
        if component.serves_api and prepared.env.get("AIRFLOW__API__WORKERS") == "2":
            assert isinstance(proc, FakeProcess)
            proc.code = 3
        return proc

    r.launcher.spawn = broken  # type: ignore[method-assign]
    r.events.clear()
    r.runner.run_once(Update(new, old))
    outcomes = [(e.kind, e.error_code) for e in r.events if e.kind != "progress"]
    assert outcomes == [("update_failed", "COMPONENT_CRASHED")]
    assert "api-server-2 exited with code 3" in next(e for e in r.events if e.kind == "update_failed").message
    r.tick()
    r.tick()
    assert r.web() == ["api-server", "api-server-1"] and len(r.rotation()) == 2


def test_the_first_replica_is_warmed_once_it_answers_and_again_after_each_restart(tmp_path: Path) -> None:
    r = make(tmp_path, low=2, high=2)
    # Warmed while the environment started (its health check answered), not the other replica.
    assert r.warmed == [(first_url(r), 3)]
    r.tick()
    r.tick()
    assert len(r.rotation()) == 2 and r.warmed == [(first_url(r), 3)]
    r.launcher.live("api-server").code = -9
    r.tick(0.01)
    r.tick(2)  # restarted after its backoff
    r.tick(0.01)  # and answers: its new process is warmed
    assert r.warmed == [(first_url(r), 3)] * 2
    r.launcher.live("api-server-1").code = -9
    r.tick(0.01)
    r.tick(2)
    r.tick(0.01)
    assert len(r.warmed) == 2  # the other replicas serve no task


def test_a_rolling_restart_warms_the_first_replicas_new_process(tmp_path: Path) -> None:
    r = make(tmp_path, low=1, high=1)
    r.tick()
    web_update(r, tmp_path, 1, 1)
    assert r.warmed == [(first_url(r), 3)] * 2


def test_a_restarted_first_replica_joins_the_rotation_only_once_warm(tmp_path: Path) -> None:
    r = make(tmp_path, low=2, high=2)
    r.tick()
    r.tick()
    first = first_url(r)
    assert first in r.rotation()
    r.warm[0] = False
    r.launcher.live("api-server").code = -9
    r.tick(0.01)
    r.tick(2)
    r.tick(0.01)
    r.tick(3)
    assert len(r.warmed) == 2 and first not in r.rotation()  # answers, but still warming
    assert all(lease and lease.url != first for lease in (r.runner.lease() for _ in range(4)))
    r.warm[0] = True
    r.tick(0.01)
    assert first in r.rotation() and len(r.warmed) == 2


def test_the_warm_up_starts_while_the_environment_starts_and_the_rotation_waits_for_it(
    tmp_path: Path,
) -> None:
    r = make(tmp_path, low=1, high=1, warm_at_start=False)  # AVAILABLE: make() checks it
    first = first_url(r)
    assert r.warmed == [(first, 3)]
    assert r.polls[0] is True  # asked for while it started, before AVAILABLE
    r.tick()
    r.tick()
    assert first not in r.rotation() and r.runner.lease() is not None  # requests still reach it
    r.warm[0] = True
    r.tick()
    assert first in r.rotation() and r.warmed == [(first, 3)]
