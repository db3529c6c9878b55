"""The environment runner with fake processes, a fake provisioner, a fake probe and a fake clock.

Crash loops, backoff, hang detection, upgrades and rollbacks, each in milliseconds: the
end-to-end tests prove the same paths against real Airflow, these prove every branch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from openmwaa.runtime.airflow_config import CeleryOptions, Ports
from openmwaa.runtime.errors import DatabaseSetupError, RequirementsInstallError
from openmwaa.runtime.installer import Runtime, RuntimeManager
from openmwaa.supervisor import EnvironmentEvent, EnvironmentSecrets, EnvironmentSpec
from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.commands import Create, Delete, Resume, Shutdown, Update
from openmwaa.supervisor.components import ComponentSpec
from openmwaa.supervisor.environment import EnvironmentRunner
from openmwaa.supervisor.group import ProcessHandle
from openmwaa.supervisor.health import HealthReport
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.timings import Timings

KEY = "123456789012/us-east-1/env"
AIRFLOW3 = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeProcess:
    name: str
    pid: int
    log_path: Path
    code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass
class FakeLauncher:
    """Processes that run until told to exit; stopping one makes it exit with -15."""

    spawned: list[FakeProcess] = field(default_factory=list)
    #: (names, grace) per stop call.
    stops: list[tuple[list[str], float]] = field(default_factory=list)
    leftovers_ended: list[Path] = field(default_factory=list)
    #: Per interrupt_tasks call: (name, exit code then) of each process, and the grace.
    interrupts: list[tuple[list[tuple[str, int | None]], float]] = field(default_factory=list)
    background: list[tuple[str, bool]] = field(default_factory=list)
    #: Kinds whose processes exit with this code right after they start.
    exit_on_start: dict[str, int] = field(default_factory=dict)

    def spawn(self, component: ComponentSpec, prepared: PreparedEnvironment, now: float) -> ProcessHandle:
        code = self.exit_on_start.get(f"{component.kind}@{prepared.runtime.version}")
        proc = FakeProcess(component.name, 5_000_000 + len(self.spawned), Path("/no/such.log"), code)
        self.spawned.append(proc)
        return proc

    def stop(self, handles: Sequence[ProcessHandle], grace: float) -> None:
        for handle in handles:
            assert isinstance(handle, FakeProcess)
            if handle.code is None:
                handle.code = -15
        self.stops.append(([h.name for h in handles], grace))

    def interrupt_tasks(self, handles: Sequence[ProcessHandle], grace: float) -> None:
        self.interrupts.append(([(h.name, h.poll()) for h in handles], grace))

    def end_leftovers(self, home: Path) -> None:
        self.leftovers_ended.append(home)

    def set_background(self, handle: ProcessHandle, background: bool) -> bool:
        self.background.append((handle.name, background))
        return True

    def live(self, name: str) -> FakeProcess:
        (proc,) = [p for p in self.spawned if p.name == name and p.code is None]
        return proc

    def names(self) -> list[str]:
        return [p.name for p in self.spawned]

    def stopped(self) -> list[str]:
        return [name for names, _ in self.stops for name in names]


@dataclass
class FakeProvisioner:
    """Records each step; keeps an upgrade journal as the real one does (from, to) until settled."""

    calls: list[str] = field(default_factory=list)
    #: Versions whose preparation fails (as a requirements install would).
    broken_versions: set[str] = field(default_factory=set)
    migrate_error: str | None = None
    roll_back_error: str | None = None
    journal: tuple[str, str] | None = None

    def prepare(
        self, spec: EnvironmentSpec, ports: Ports, progress: Callable[[str], None]
    ) -> PreparedEnvironment:
        self.calls.append(f"prepare {spec.airflow_version}")
        if spec.airflow_version in self.broken_versions:
            raise RequirementsInstallError(f"cannot install for {spec.airflow_version}")
        major = int(spec.airflow_version.split(".")[0])
        root = Path(f"/rt/{spec.airflow_version}")
        runtime = Runtime(spec.airflow_version, major, root, root / "python", root)
        env = {f"AIRFLOW__{k.upper().replace('.', '__')}": v for k, v in spec.airflow_config.items()}
        return PreparedEnvironment(spec, runtime, ports, env, None, spec.home / "plugins", dict(env))

    def has_database(self, prepared: PreparedEnvironment) -> bool:
        return True

    def initialize_database(self, prepared: PreparedEnvironment, timeout: float) -> None:
        self.calls.append("initialize")

    def begin_upgrade(self, prepared: PreparedEnvironment, from_version: str, timeout: float) -> None:
        to = prepared.runtime.version
        self.calls.append(f"begin_upgrade {from_version}->{to}")
        self.journal = (from_version, to)
        if self.migrate_error:
            raise DatabaseSetupError(self.migrate_error)

    def resume_upgrade(self, prepared: PreparedEnvironment, timeout: float) -> bool:
        if self.journal is None:
            return False
        if self.journal[1] == prepared.runtime.version:
            self.begin_upgrade(prepared, self.journal[0], timeout)
            return True
        self.roll_back_upgrade(prepared.spec)
        return False

    def roll_back_upgrade(self, spec: EnvironmentSpec) -> None:
        if self.journal is None:
            return
        self.calls.append("roll_back_upgrade")
        if self.roll_back_error:
            raise DatabaseSetupError(self.roll_back_error)
        self.journal = None

    def finish_upgrade(self, spec: EnvironmentSpec) -> None:
        self.calls.append("finish_upgrade")
        self.journal = None

    def remove_unused(self, prepared: PreparedEnvironment) -> None:
        self.calls.append("remove_unused")

    def remove(self, home: Path, database_url: str | None, python: Path | None) -> None:
        self.calls.append(f"remove {home.name}")


HEALTHY = HealthReport(True, "all components healthy")


@dataclass
class Probe:
    """Airflow's health answers; each probe takes ``cost`` seconds of the fake clock."""

    clock: Clock
    report: HealthReport = HEALTHY
    cost: float = 0.25
    count: int = 0

    def __call__(self, base_url: str, major: int) -> HealthReport:
        self.count += 1
        self.clock.now += self.cost
        return self.report


def failing(*components: str) -> HealthReport:
    return HealthReport(False, f"{', '.join(components)} unhealthy", components)


@dataclass
class Harness:
    runner: EnvironmentRunner
    clock: Clock
    probe: Probe
    launcher: FakeLauncher
    provisioner: FakeProvisioner
    events: list[EnvironmentEvent]
    #: The pids running when each event was sent.
    live_at_event: list[list[int]]

    def outcomes(self) -> list[tuple[str, str | None]]:
        return [(e.kind, e.error_code) for e in self.events if e.kind != "progress"]

    def tick(self, seconds: float) -> None:
        """Let ``seconds`` of the fake clock pass, with one turn of the loop after each."""
        self.clock.now += seconds
        self.runner.run_once(None)


TIMINGS = Timings(health_interval=0, recovery_check_interval=5, liveness_check_interval=15, tick=0.01)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return make_harness(tmp_path)


def make_harness(
    tmp_path: Path,
    *,
    hang_timeout: float = 0.0,
    start_timeout: float = 60,
    backends: dict[str, str] | None = None,
) -> Harness:
    clock = Clock()
    probe = Probe(clock)
    launcher, provisioner = FakeLauncher(), FakeProvisioner()
    events: list[EnvironmentEvent] = []
    live_at_event: list[list[int]] = []

    def record(event: EnvironmentEvent) -> None:
        events.append(event)
        live_at_event.append([p.pid for p in launcher.spawned if p.code is None])

    runner = EnvironmentRunner(
        KEY,
        runtimes=RuntimeManager(tmp_path / "unused"),
        emit=record,
        start_timeout=start_timeout,
        clock=clock,
        policy=RestartPolicy(base_delay=1, max_delay=60, window=120, max_restarts=3),
        probe=probe,
        # Each web server replica's own check (tested in test_web_replicas): always answers.
        replica_probe=Probe(clock, cost=0),
        hang_timeout=hang_timeout,
        timings=TIMINGS,
        launcher=launcher,
        provisioner=provisioner,
        backends=None if backends is None else lambda: dict(backends),
        warmup=lambda _url, _major: lambda: True,
    )
    return Harness(runner, clock, probe, launcher, provisioner, events, live_at_event)


def spec(tmp_path: Path, version: str = "3.2.1", **config: str) -> EnvironmentSpec:
    return EnvironmentSpec(
        key=KEY,
        name="env",
        airflow_version=version,
        home=tmp_path / "home",
        dags_dir=tmp_path / "dags",
        plugins_zip=None,
        requirements_file=None,
        startup_script=None,
        airflow_config=config,
        secrets=EnvironmentSecrets.generate(),
    )


def created(h: Harness, tmp_path: Path, version: str = "3.2.1", **config: str) -> EnvironmentSpec:
    s = spec(tmp_path, version, **config)
    h.runner.run_once(Create(s))
    assert h.outcomes() == [("available", None)]
    h.events.clear()
    h.live_at_event.clear()
    return s


# Create, resume, delete ------------------------------------------------------------------


def test_create_starts_every_component_with_the_web_server_first(harness: Harness, tmp_path: Path) -> None:
    created(harness, tmp_path)
    assert harness.launcher.names() == list(AIRFLOW3)
    assert harness.provisioner.calls == ["prepare 3.2.1", "initialize"]
    assert harness.launcher.leftovers_ended == [tmp_path / "home"]
    # The others wait at a lower priority while the web server starts, and get it back after.
    others = ["scheduler", "dag-processor", "triggerer"]
    assert harness.launcher.background == [(n, True) for n in others] + [(n, False) for n in others]
    assert harness.runner.endpoint() is not None and harness.runner.airflow_major() == 3


def test_a_component_exiting_while_starting_fails_the_create_and_stops_everything(
    harness: Harness, tmp_path: Path
) -> None:
    harness.launcher.exit_on_start["scheduler@3.2.1"] = 1
    harness.probe.report = failing("scheduler")
    harness.runner.run_once(Create(spec(tmp_path)))
    assert harness.outcomes() == [("create_failed", "COMPONENT_CRASHED")]
    assert "scheduler exited with code 1" in harness.events[-1].message
    assert all(p.code is not None for p in harness.launcher.spawned)
    assert harness.runner.endpoint() is None


def test_airflow_never_healthy_is_a_start_up_timeout(tmp_path: Path) -> None:
    h = make_harness(tmp_path, start_timeout=30)
    h.probe.report = failing("dag-processor")
    h.runner.run_once(Create(spec(tmp_path)))
    assert h.outcomes() == [("create_failed", "STARTUP_TIMEOUT")]
    assert "dag-processor unhealthy" in h.events[-1].message
    assert h.probe.count == pytest.approx(30 / h.probe.cost, abs=1)


def test_resume_that_does_not_get_healthy_is_unavailable_then_recovers(
    harness: Harness, tmp_path: Path
) -> None:
    harness.launcher.exit_on_start["triggerer@3.2.1"] = 1
    harness.runner.run_once(Resume(spec(tmp_path)))
    assert harness.outcomes() == [("unavailable", "COMPONENT_CRASHED")]
    harness.launcher.exit_on_start.clear()
    harness.tick(0)  # the exit is seen as a crash: restart due after the base delay
    harness.tick(1)
    assert harness.launcher.names().count("triggerer") == 2
    harness.tick(5)
    assert harness.outcomes()[-1] == ("available", None)
    assert harness.events[-1].message == "Airflow is healthy again"


def test_delete_stops_everything_and_removes_the_environment(harness: Harness, tmp_path: Path) -> None:
    s = created(harness, tmp_path)
    assert harness.runner.run_once(Delete(s.home, None)) is False
    assert harness.outcomes() == [("deleted", None)]
    assert harness.provisioner.calls[-1] == "remove home"
    assert all(p.code == -15 for p in harness.launcher.spawned)


def test_shutdown_stops_everything_and_ends_the_loop(harness: Harness, tmp_path: Path) -> None:
    created(harness, tmp_path)
    assert harness.runner.run_once(Shutdown()) is False
    assert all(p.code == -15 for p in harness.launcher.spawned)
    assert harness.runner.endpoint() is None
    assert harness.outcomes() == []


# Crashes and crash loops -------------------------------------------------------------------


def test_a_crash_restarts_the_component_after_its_backoff(harness: Harness, tmp_path: Path) -> None:
    created(harness, tmp_path)
    harness.launcher.live("scheduler").code = -9
    harness.tick(0)
    harness.tick(0.5)
    assert harness.launcher.names().count("scheduler") == 1, "restarted before its backoff"
    harness.tick(0.5)
    assert harness.launcher.names().count("scheduler") == 2
    assert harness.outcomes() == []


def test_a_crash_loop_is_unavailable_once_then_available_when_healthy_again(
    harness: Harness, tmp_path: Path
) -> None:
    created(harness, tmp_path)
    for _ in range(3):  # max_restarts crashes within the window
        harness.launcher.live("scheduler").code = 1
        harness.tick(0)
        harness.tick(4)  # past the backoff (1, 2, 4 s): restarted
    assert harness.outcomes() == [("unavailable", "COMPONENT_CRASHED")]
    assert "scheduler keeps crashing (3 times within 120 s, last exit code 1)" in harness.events[-1].message
    harness.probe.report = failing("scheduler")
    harness.tick(5)
    assert harness.outcomes()[-1] == ("unavailable", "COMPONENT_CRASHED"), "recovered while unhealthy"
    harness.probe.report = HEALTHY
    harness.tick(5)
    assert harness.outcomes() == [("unavailable", "COMPONENT_CRASHED"), ("available", None)]


def test_crashes_spread_over_more_than_the_window_are_no_crash_loop(harness: Harness, tmp_path: Path) -> None:
    created(harness, tmp_path)
    for _ in range(5):
        harness.launcher.live("triggerer").code = 1
        harness.tick(0)
        harness.tick(61)
    assert harness.outcomes() == []


# Hung components -----------------------------------------------------------------------------


def test_a_component_failing_for_the_hang_timeout_is_stopped_and_restarted(tmp_path: Path) -> None:
    h = make_harness(tmp_path, hang_timeout=30)
    created(h, tmp_path)
    hung = h.launcher.live("scheduler")
    h.probe.report = failing("scheduler")
    for _ in range(3):  # liveness checks at 15, 30 and 45 s: failing since 15 s, due at 45 s
        assert hung.code is None
        h.tick(15)
    assert h.launcher.stops[-1] == (["scheduler"], TIMINGS.hung_stop_grace)
    assert hung.code == -15
    h.probe.report = HEALTHY
    h.tick(0)
    h.tick(1)
    assert h.launcher.live("scheduler") is not hung
    assert h.outcomes() == [], "one hang is no crash loop"


def test_a_single_healthy_answer_restarts_the_hang_count(tmp_path: Path) -> None:
    h = make_harness(tmp_path, hang_timeout=30)
    created(h, tmp_path)
    for report in (
        failing("triggerer"),
        failing("triggerer"),
        HEALTHY,
        failing("triggerer"),
        failing("triggerer"),
    ):
        h.probe.report = report
        h.tick(15)
    assert h.launcher.stopped() == []


def test_no_hang_is_counted_while_a_crashed_component_restarts(tmp_path: Path) -> None:
    h = make_harness(tmp_path, hang_timeout=20)
    created(h, tmp_path)
    h.probe.report = failing("scheduler")
    h.tick(15)  # failing since 15 s
    h.launcher.live("dag-processor").code = 1
    h.tick(15)  # a restart is under way at the liveness check: the count starts again
    h.tick(15)
    assert h.launcher.stopped() == ["dag-processor"]


def test_hang_detection_is_off_without_a_timeout(harness: Harness, tmp_path: Path) -> None:
    created(harness, tmp_path)
    harness.probe.report = failing("scheduler")
    probes = harness.probe.count
    for _ in range(10):
        harness.tick(15)
    assert harness.probe.count == probes and harness.launcher.stopped() == []


# Updates, upgrades and rollbacks -----------------------------------------------------------


def test_a_web_only_change_restarts_only_the_web_server(harness: Harness, tmp_path: Path) -> None:
    old = created(harness, tmp_path)
    harness.runner.run_once(Update(spec(tmp_path, **{"api.workers": "2"}), old))
    assert harness.outcomes() == [("available", None)]
    # A spare web server first, then the first one again; the spare goes once it has.
    assert harness.launcher.names() == [*AIRFLOW3, "api-server-1", "api-server"]
    assert harness.launcher.stopped() == ["api-server", "api-server-1"]


def test_an_unchanged_configuration_restarts_nothing(harness: Harness, tmp_path: Path) -> None:
    old = created(harness, tmp_path, **{"core.parallelism": "4"})
    harness.runner.run_once(Update(spec(tmp_path, **{"core.parallelism": "4"}), old))
    assert harness.outcomes() == [("available", None)]
    assert harness.launcher.names() == list(AIRFLOW3)


def test_an_update_of_the_counts_starts_and_stops_only_those_replicas(
    harness: Harness, tmp_path: Path
) -> None:
    two = replace(spec(tmp_path), schedulers=2)
    harness.runner.run_once(Create(two))
    assert harness.launcher.names() == [
        "api-server",
        "scheduler",
        "scheduler-1",
        "dag-processor",
        "triggerer",
    ]
    harness.events.clear()
    harness.runner.run_once(Update(replace(two, schedulers=3), two))
    assert harness.outcomes() == [("available", None)]
    assert harness.launcher.names()[5:] == ["scheduler-2"], "nothing else restarts"
    harness.runner.run_once(Update(replace(two, schedulers=1), replace(two, schedulers=3)))
    assert sorted(harness.launcher.stopped()) == ["scheduler-1", "scheduler-2"]
    assert len(harness.launcher.names()) == 6


def test_a_database_or_broker_down_is_unavailable_with_the_reason_until_it_is_back(tmp_path: Path) -> None:
    down: dict[str, str] = {}
    h = make_harness(tmp_path, backends=down)
    pg = "postgresql+psycopg2://u:p@127.0.0.1:5432/db"
    celery = CeleryOptions(broker_url="redis://:p@127.0.0.1:6379/0", queue="q")
    h.runner.run_once(Create(replace(spec(tmp_path), database_url=pg, celery=celery)))
    assert h.outcomes() == [("available", None)]
    h.events.clear()
    down["broker"] = "redis exited with code -9"
    h.tick(1)
    h.tick(10)  # it stays down: said once, and no recovery meanwhile
    assert h.outcomes() == [("unavailable", "DATABASE_OR_BROKER_UNAVAILABLE")]
    assert h.events[-1].message == "The Celery broker is unavailable: redis exited with code -9."
    down.clear()
    h.tick(10)
    assert h.outcomes()[-1] == ("available", None)


def test_a_server_the_environment_does_not_use_does_not_matter(tmp_path: Path) -> None:
    h = make_harness(tmp_path, backends={"broker": "down", "database": "down"})
    created(h, tmp_path)  # SQLite, LocalExecutor
    h.tick(10)
    assert h.outcomes() == []


def test_a_version_upgrade_migrates_then_restarts_everything(harness: Harness, tmp_path: Path) -> None:
    old = created(harness, tmp_path)
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), old))
    assert harness.outcomes() == [("available", None)]
    assert harness.provisioner.calls[2:] == [
        "prepare 3.3.1",
        "begin_upgrade 3.2.1->3.3.1",
        "finish_upgrade",
        "remove_unused",
    ]
    assert harness.launcher.names() == list(AIRFLOW3) * 2
    assert all(p.code == -15 for p in harness.launcher.spawned[:4])


def test_a_failed_migration_rolls_the_database_back_and_the_previous_version_runs(
    harness: Harness, tmp_path: Path
) -> None:
    old = created(harness, tmp_path)
    harness.provisioner.migrate_error = "airflow db migrate failed (exit code 1)"
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), old))
    assert harness.outcomes() == [("update_failed", "DATABASE_SETUP_FAILED")]
    assert harness.provisioner.calls[2:] == [
        "prepare 3.3.1",
        "begin_upgrade 3.2.1->3.3.1",
        "roll_back_upgrade",
        "prepare 3.2.1",
    ]
    assert harness.launcher.names() == list(AIRFLOW3) * 2  # the old version, started again


def test_update_failed_is_said_only_once_the_previous_configuration_serves(
    harness: Harness, tmp_path: Path
) -> None:
    """Said earlier, a new update could be queued behind the rollback and take its health for its own."""
    old = created(harness, tmp_path)
    harness.provisioner.migrate_error = "airflow db migrate failed (exit code 1)"
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), old))
    (reported,) = [i for i, e in enumerate(harness.events) if e.kind == "update_failed"]
    restarted = harness.launcher.spawned[4:]
    assert harness.live_at_event[reported] == [p.pid for p in restarted] and len(restarted) == 4


def test_an_upgraded_version_that_does_not_start_is_rolled_back(harness: Harness, tmp_path: Path) -> None:
    old = created(harness, tmp_path)
    harness.launcher.exit_on_start["dag-processor@3.3.1"] = 2
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), old))
    assert harness.outcomes() == [("update_failed", "COMPONENT_CRASHED")]
    assert "roll_back_upgrade" in harness.provisioner.calls
    assert "finish_upgrade" not in harness.provisioner.calls
    assert all(p.code is None for p in harness.launcher.spawned[-4:])


def test_a_failed_update_whose_previous_configuration_fails_too_is_unavailable(
    harness: Harness, tmp_path: Path
) -> None:
    old = created(harness, tmp_path)
    harness.launcher.exit_on_start.update({"scheduler@3.3.1": 1, "scheduler@3.2.1": 1})
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), old))
    assert harness.outcomes() == [
        ("update_failed", "COMPONENT_CRASHED"),
        ("unavailable", "COMPONENT_CRASHED"),
    ]
    assert "previous configuration did not start again either" in harness.events[-1].message


def test_an_update_that_cannot_be_prepared_leaves_what_runs_alone(harness: Harness, tmp_path: Path) -> None:
    old = created(harness, tmp_path)
    harness.provisioner.broken_versions.add("3.3.1")
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), old))
    assert harness.outcomes() == [("update_failed", "REQUIREMENTS_INSTALL_FAILED")]
    assert harness.launcher.stopped() == [] and harness.launcher.names() == list(AIRFLOW3)


# Upgrades across an openmwaa restart ------------------------------------------------------
# After a restart nothing runs: the service asks for the update again (the record is UPDATING),
# or for a resume; whatever the upgrade's journal says must be finished or undone first.


def test_after_a_restart_an_interrupted_upgrade_is_migrated_again(harness: Harness, tmp_path: Path) -> None:
    harness.provisioner.journal = ("3.2.1", "3.3.1")
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), spec(tmp_path, "3.2.1")))
    assert harness.outcomes() == [("available", None)]
    assert harness.provisioner.calls == [
        "prepare 3.3.1",
        "begin_upgrade 3.2.1->3.3.1",
        "finish_upgrade",
        "remove_unused",
    ]
    assert harness.launcher.leftovers_ended == [tmp_path / "home"]
    assert harness.provisioner.journal is None


def test_after_a_restart_an_upgrade_not_begun_yet_is_migrated(harness: Harness, tmp_path: Path) -> None:
    """The old runner started the new version on the old database without migrating it."""
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), spec(tmp_path, "3.2.1")))
    assert "begin_upgrade 3.2.1->3.3.1" in harness.provisioner.calls
    assert harness.outcomes() == [("available", None)]


def test_after_a_restart_an_upgrade_that_cannot_be_prepared_is_rolled_back_first(
    harness: Harness, tmp_path: Path
) -> None:
    harness.provisioner.journal = ("3.2.1", "3.3.1")
    harness.provisioner.broken_versions.add("3.3.1")
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), spec(tmp_path, "3.2.1")))
    assert harness.provisioner.calls == ["prepare 3.3.1", "roll_back_upgrade", "prepare 3.2.1"]
    assert harness.outcomes() == [("update_failed", "REQUIREMENTS_INSTALL_FAILED")]
    assert harness.launcher.names() == list(AIRFLOW3)


def test_a_resume_of_the_new_version_finishes_the_upgrade(harness: Harness, tmp_path: Path) -> None:
    harness.provisioner.journal = ("3.2.1", "3.3.1")
    harness.runner.run_once(Resume(spec(tmp_path, "3.3.1")))
    assert harness.provisioner.calls == ["prepare 3.3.1", "begin_upgrade 3.2.1->3.3.1", "finish_upgrade"]
    assert harness.outcomes() == [("available", None)]


def test_a_resume_of_the_old_version_rolls_the_upgrade_back(harness: Harness, tmp_path: Path) -> None:
    harness.provisioner.journal = ("3.2.1", "3.3.1")
    harness.runner.run_once(Resume(spec(tmp_path, "3.2.1")))
    assert harness.provisioner.calls == ["prepare 3.2.1", "roll_back_upgrade"]
    assert harness.outcomes() == [("available", None)]


def test_a_database_that_cannot_be_rolled_back_runs_nothing(harness: Harness, tmp_path: Path) -> None:
    old = created(harness, tmp_path)
    harness.provisioner.migrate_error = "airflow db migrate failed (exit code 1)"
    harness.provisioner.roll_back_error = "PostgreSQL did not answer within 600 s."
    harness.runner.run_once(Update(spec(tmp_path, "3.3.1"), old))
    assert harness.outcomes() == [
        ("update_failed", "DATABASE_SETUP_FAILED"),
        ("unavailable", "DATABASE_SETUP_FAILED"),
    ]
    assert "could not be rolled back: PostgreSQL did not answer" in harness.events[-1].message
    assert all(p.code is not None for p in harness.launcher.spawned), "nothing may run on it"
    assert harness.runner.endpoint() is None


# The thread ------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_runner_thread_handles_commands_and_stops_on_shutdown(harness: Harness, tmp_path: Path) -> None:
    harness.runner.start()
    harness.runner.submit(Create(spec(tmp_path)))
    wait_until(lambda: bool(harness.outcomes()))
    assert harness.outcomes() == [("available", None)]
    harness.runner.submit(Shutdown())
    assert harness.runner.join(10)
    assert harness.runner.finished.is_set()
    assert all(p.code == -15 for p in harness.launcher.spawned)


def test_a_delete_interrupts_a_start_up_that_is_under_way(tmp_path: Path) -> None:
    h = make_harness(tmp_path, start_timeout=1e9)
    h.probe.report = failing("api-server")
    h.runner.start()
    h.runner.submit(Create(spec(tmp_path)))
    wait_until(lambda: h.probe.count > 0)
    h.runner.submit(Delete(tmp_path / "home", None))
    assert h.runner.join(10)
    assert h.outcomes() == [("deleted", None)]
    assert all(p.code == -15 for p in h.launcher.spawned)
