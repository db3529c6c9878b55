"""Restart and crash-loop rules with fake processes and a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.components import ComponentSpec
from openmwaa.supervisor.group import ComponentGroup, ProcessHandle


@dataclass
class FakeProcess:
    name: str
    pid: int
    log_path: Path = Path("/nonexistent.log")
    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass
class FakeLauncher:
    started: list[FakeProcess] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    stop_calls: int = 0

    def start(self, spec: ComponentSpec, now: float) -> ProcessHandle:
        proc = FakeProcess(spec.name, 1000 + len(self.started))
        self.started.append(proc)
        return proc

    def stop(self, handles: Sequence[ProcessHandle]) -> None:
        self.stop_calls += 1
        self.stopped.extend(h.name for h in handles)

    def latest(self, name: str) -> FakeProcess:
        return [p for p in self.started if p.name == name][-1]


SPECS = [ComponentSpec("api-server", ("a",), serves_api=True), ComponentSpec("scheduler", ("s",))]


def group(launcher: FakeLauncher, **policy: float) -> ComponentGroup:
    return ComponentGroup(launcher.start, launcher.stop, RestartPolicy(**policy))  # type: ignore[arg-type]


def test_crashed_component_restarts_after_backoff() -> None:
    launcher = FakeLauncher()
    g = group(launcher, base_delay=2, max_delay=60, window=120, max_restarts=5)
    g.start(SPECS, now=0)
    assert g.all_running()
    launcher.latest("scheduler").code = -9
    (crash,) = g.reconcile(now=10)
    assert crash.component == "scheduler" and crash.exit_code == -9
    assert crash.verdict.delay == 2
    assert launcher.stopped == ["scheduler"]  # leftovers of the dead one are reaped
    assert not g.all_running()
    assert g.reconcile(now=11) == []
    assert len(launcher.started) == 2  # not yet
    g.reconcile(now=12)
    assert len(launcher.started) == 3
    assert g.running["scheduler"] is launcher.latest("scheduler")
    assert g.all_running()


def test_repeated_crashes_back_off_and_become_a_crash_loop() -> None:
    launcher = FakeLauncher()
    g = group(launcher, base_delay=1, max_delay=60, window=120, max_restarts=5)
    g.start(SPECS, now=0)
    now = 0.0
    verdicts = []
    for _ in range(5):
        launcher.latest("scheduler").code = 1
        (crash,) = g.reconcile(now)
        verdicts.append(crash.verdict)
        now += crash.verdict.delay
        g.reconcile(now)
    assert [v.delay for v in verdicts] == [1, 2, 4, 8, 16]
    assert [v.crash_loop for v in verdicts] == [False] * 4 + [True]
    assert launcher.latest("api-server").pid == 1000  # untouched throughout


def test_stop_all_forgets_specs_and_never_restarts() -> None:
    launcher = FakeLauncher()
    g = group(launcher)
    g.start(SPECS, now=0)
    launcher.latest("scheduler").code = 1
    g.reconcile(now=1)
    g.stop()
    assert g.running == {} and g.specs() == []
    g.reconcile(now=1000)
    assert len(launcher.started) == 2
    assert set(launcher.stopped) == {"scheduler", "api-server"}


def test_stopping_some_components_keeps_the_others() -> None:
    launcher = FakeLauncher()
    g = group(launcher)
    g.start(SPECS, now=0)
    g.stop(["api-server"])
    assert list(g.running) == ["scheduler"]
    g.start([SPECS[0]], now=1)
    assert set(g.running) == {"api-server", "scheduler"}


def test_exited_reports_start_up_failures_without_handling_them() -> None:
    launcher = FakeLauncher()
    g = group(launcher)
    g.start(SPECS, now=0)
    launcher.latest("api-server").code = 2
    assert g.exited() == [("api-server", 2)]
    assert "api-server" in g.running  # still there for the caller to read its log


def test_a_retired_component_runs_on_unrestarted_and_is_reaped_when_it_exits() -> None:
    launcher = FakeLauncher()
    g = group(launcher, base_delay=1, max_delay=60, window=120, max_restarts=5)
    worker = ComponentSpec("worker", ("w",), index=1)
    g.start([*SPECS, worker], now=0)
    (handle,) = g.retire(["worker-1"])
    assert handle.name == "worker-1" and launcher.stopped == [], "retired, not stopped: it ends by itself"
    assert "worker-1" not in g.running and [s.name for s in g.specs()] == ["api-server", "scheduler"]
    assert g.in_use("worker-1") and g.all_running()
    assert g.reconcile(now=5) == [] and launcher.stopped == []
    launcher.latest("worker-1").code = 0
    assert g.reconcile(now=6) == [], "its exit is no crash"
    assert launcher.stopped == ["worker-1"] and not g.in_use("worker-1")
    g.reconcile(now=100)
    assert [p.name for p in launcher.started].count("worker-1") == 1, "never restarted"


def test_stopping_everything_stops_retired_components_too() -> None:
    launcher = FakeLauncher()
    g = group(launcher)
    g.start([*SPECS, ComponentSpec("worker", ("w",), index=1)], now=0)
    g.retire(["worker-1"])
    g.stop_retired(["no-such"])
    assert launcher.stopped == []
    g.stop(None)
    assert sorted(launcher.stopped) == ["api-server", "scheduler", "worker-1"]
    assert g.retiring == {}


def test_a_reconcile_with_nothing_to_reap_stops_nothing() -> None:
    # Stopping even an empty list scans every process in /proc (the launcher looks for
    # leftovers); the supervisor reconciles every second, so that was most of its idle CPU.
    launcher = FakeLauncher()
    g = group(launcher)
    g.start([*SPECS, ComponentSpec("worker", ("w",), index=1)], now=0)
    g.retire(["worker-1"])
    for now in range(1, 6):
        assert g.reconcile(now=now) == []
    g.stop_retired(["no-such"])
    assert launcher.stop_calls == 0
    launcher.latest("worker-1").code = 0
    g.reconcile(now=7)
    assert (launcher.stop_calls, launcher.stopped) == (1, ["worker-1"])
