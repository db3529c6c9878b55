"""The supervisor with real Airflow: create, health, DAG pickup, a hung scheduler, kill -9 of each
component, clean shutdown; one environment per version, both created at once.

Runtimes are cached in ``OPENMWAA_TEST_RUNTIME_DIR`` (default ``~/.cache/openmwaa/runtimes``), so
only the first run installs Airflow; the create-to-available time printed is for a warm runtime.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openmwaa.runtime.installer import RuntimeManager
from openmwaa.runtime.versions import major
from openmwaa.settings import default_cache_dir
from openmwaa.supervisor import EnvironmentEvent, EnvironmentSecrets, EnvironmentSpec, Supervisor
from openmwaa.supervisor.health import HEALTH_PATH, evaluate_health
from openmwaa.supervisor.pidfiles import read_pidfiles
from openmwaa.supervisor.proc import all_stats, read_stat, session_members

from .conftest import airflow_healthy, processes_using

pytestmark = pytest.mark.e2e

VERSIONS = ["3.3.1", "2.11.2"]
START_TIMEOUT = 300.0

PROBE_DAG = """
import datetime
from airflow import DAG
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator

# Unpaused from the start: a triggered run is scheduled with no "dags unpause" first.
with DAG(
    "openmwaa_probe",
    start_date=datetime.datetime(2024, 1, 1),
    schedule=None,
    is_paused_upon_creation=False,
):
    EmptyOperator(task_id="noop")
"""


class EventLog:
    def __init__(self) -> None:
        self.events: list[EnvironmentEvent] = []
        self.arrived: list[float] = []
        self._cond = threading.Condition()

    def __call__(self, event: EnvironmentEvent) -> None:
        with self._cond:
            self.events.append(event)
            self.arrived.append(time.monotonic())
            self._cond.notify_all()

    def of(self, key: str) -> list[EnvironmentEvent]:
        with self._cond:
            return [e for e in self.events if e.key == key]

    def wait_for(self, key: str, kinds: set[str], timeout: float) -> tuple[EnvironmentEvent, float]:
        """The first event of ``kinds`` for ``key``, and when it arrived (``time.monotonic()``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event, arrived in zip(self.events, self.arrived, strict=True):
                    if event.key == key and event.kind in kinds:
                        return event, arrived
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kinds} event for {key} within {timeout} s: {self.events}")
                self._cond.wait(left)


def runtime_dir() -> Path:
    configured = os.environ.get("OPENMWAA_TEST_RUNTIME_DIR")
    return Path(configured).expanduser() if configured else default_cache_dir()


def live_pids(home: Path) -> dict[str, int]:
    return {r.component: r.pid for r in read_pidfiles(home / "run") if read_stat(r.pid) is not None}


def registered_dags(home: Path) -> set[str]:
    db = home / "airflow.db"
    if not db.exists():
        return set()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return {row[0] for row in conn.execute("SELECT dag_id FROM dag")}
        except sqlite3.OperationalError:
            return set()


def run_states(home: Path) -> set[str]:
    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT state FROM dag_run WHERE dag_id = 'openmwaa_probe'").fetchall()
    return {str(row[0]) for row in rows}


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def probe_spec(tmp_path: Path, name: str, version: str, airflow_config: dict[str, str]) -> EnvironmentSpec:
    """An environment in ``tmp_path`` (home ``env``, an empty DAG folder ``dags``), nothing else set."""
    dags = tmp_path / "dags"
    dags.mkdir()
    return EnvironmentSpec(
        key=f"123456789012/us-east-1/{name}",
        name=name,
        airflow_version=version,
        home=tmp_path / "env",
        dags_dir=dags,
        plugins_zip=None,
        requirements_file=None,
        startup_script=None,
        airflow_config=airflow_config,
        secrets=EnvironmentSecrets.generate(),
        database_url=None,
    )


HANG_TIMEOUT = 5.0
#: Airflow reports a scheduler without a heartbeat for this long unhealthy (its default is 30 s).
HEALTH_THRESHOLD = 10


@dataclass
class Started:
    """Both versions' environments, created at once under one supervisor (with hang detection)."""

    supervisor: Supervisor
    events: EventLog
    specs: dict[str, EnvironmentSpec]
    create_seconds: dict[str, float]


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    manager = RuntimeManager(runtime_dir())
    for version in VERSIONS:
        manager.ensure(version, print)  # warm the cache outside the timing
    events = EventLog()
    sup = Supervisor(
        runtimes=manager, on_event=events, start_timeout=START_TIMEOUT, hang_timeout=HANG_TIMEOUT
    )
    config = {
        "core.default_task_retries": "1",
        "scheduler.scheduler_health_check_threshold": str(HEALTH_THRESHOLD),
    }
    specs = {v: probe_spec(tmp_path_factory.mktemp(f"sup-{v}"), f"e2e-{v}", v, config) for v in VERSIONS}
    begun = time.monotonic()
    for spec in specs.values():
        sup.create(spec)
    seconds: dict[str, float] = {}
    for version, spec in specs.items():
        outcome, arrived = events.wait_for(spec.key, {"available", "create_failed"}, START_TIMEOUT + 30)
        seconds[version] = arrived - begun
        assert outcome.kind == "available", outcome.message
    try:
        yield Started(sup, events, specs, seconds)
    finally:
        sup.shutdown(timeout=60)


def test_environment_lifecycle(started: Started) -> None:
    """Health, options, DAG pickup, a task run; a hung scheduler killed and restarted; kill -9 of
    every component in turn; and a task run again. Both versions at once, each in its own thread."""
    with ThreadPoolExecutor(len(VERSIONS)) as pool:
        outcomes = {v: pool.submit(check_lifecycle, v, started) for v in VERSIONS}
    failures = {v: e for v, f in outcomes.items() if (e := f.exception()) is not None}
    for version, failure in failures.items():
        print(f"Airflow {version}: {failure!r}")
    if failures:
        raise next(iter(failures.values()))


def check_lifecycle(version: str, started: Started) -> None:
    sup, events, spec = started.supervisor, started.events, started.specs[version]
    home, dags = spec.home, spec.dags_dir
    print(
        f"\nAirflow {version}: create -> available in {started.create_seconds[version]:.1f} s "
        f"(warm runtime, {len(VERSIONS)} environments created at once)"
    )

    base = sup.endpoint(spec.key)
    assert base is not None
    assert sup.airflow_major(spec.key) == major(version)
    health = httpx.get(base + HEALTH_PATH[major(version)], timeout=10).json()
    assert evaluate_health(health, major(version)).healthy, health

    # A DAG dropped into the folder (checked below, once the CLI command meanwhile is done)...
    (dags / "openmwaa_probe.py").write_text(PROBE_DAG)

    # The user's option reached Airflow.
    code, out, err = sup.run_cli(spec.key, ["config", "get-value", "core", "default_task_retries"], 120)
    assert code == 0, err
    assert out.strip() == b"1"

    # ...is registered within seconds.
    wait_until(lambda: "openmwaa_probe" in registered_dags(home), 90, "the probe DAG in the metadata DB")

    # Tasks really run (on Airflow 3 they talk to the api-server's execution API).
    code, out, err = sup.run_cli(spec.key, ["dags", "trigger", "openmwaa_probe"], 120)
    assert code == 0, (out + err).decode(errors="replace")[-2000:]
    wait_until(lambda: run_states(home) == {"success"}, 180, "the probe DAG run to succeed")

    # A scheduler that stops (SIGSTOP: alive, but no heartbeat) is killed and started again:
    # unhealthy after HEALTH_THRESHOLD, seen by a liveness check (every 15 s), due after
    # HANG_TIMEOUT more, then SIGTERM and, since a stopped process cannot act on it, SIGKILL.
    hung = live_pids(home)["scheduler"]
    os.kill(hung, signal.SIGSTOP)
    stopped_at = time.monotonic()
    wait_until(lambda: read_stat(hung) is None, 90, "the hung scheduler to be killed")
    killed_after = time.monotonic() - stopped_at
    assert killed_after >= HEALTH_THRESHOLD, "killed before Airflow could have called it unhealthy"
    wait_until(lambda: live_pids(home).get("scheduler") not in (None, hung), 60, "a new scheduler process")
    wait_until(lambda: airflow_healthy(base, version), 120, "health after the hung scheduler's restart")
    print(f"Airflow {version}: hung scheduler killed {killed_after:.0f} s after it stopped")

    # (Idle memory is measured by benchmarks/bench_environments.py, not here.)
    pids = live_pids(home)

    # kill -9 of each component's main process in turn (what the OOM killer does): its workers are
    # left behind without it. A new one starts, nothing the old one started survives, and Airflow
    # is healthy again; one crash each is no crash loop.
    for component, old in sorted(pids.items()):
        old_stat = read_stat(old)
        assert old_stat is not None
        os.kill(old, signal.SIGKILL)
        wait_until(
            lambda c=component, o=old: live_pids(home).get(c) not in (None, o), 60, f"a new {component}"
        )
        wait_until(
            lambda o=old_stat: not session_members(o.pid, o.start_ticks, all_stats()),
            30,
            f"the processes of the killed {component} to be reaped",
        )
        wait_until(lambda: airflow_healthy(base, version), 120, f"health after the {component} restart")
    assert not [e for e in events.of(spec.key) if e.kind == "unavailable"]
    code, out, err = sup.run_cli(spec.key, ["dags", "trigger", "openmwaa_probe"], 120)
    assert code == 0, (out + err).decode(errors="replace")[-2000:]
    wait_until(lambda: run_states(home) == {"success"}, 180, "a DAG run after the kills to succeed")


def test_shutdown_stops_every_process(started: Started) -> None:
    """A clean shutdown leaves no process of any environment and no endpoint."""
    sup = started.supervisor
    homes = [spec.home for spec in started.specs.values()]
    everything = {pid for home in homes for pid in live_pids(home).values()}
    assert len(everything) >= 2 * len(homes), everything
    sup.shutdown(timeout=60)
    assert not [pid for pid in everything if read_stat(pid) is not None]
    for home in homes:
        assert processes_using(home) == []
    assert all(sup.endpoint(spec.key) is None for spec in started.specs.values())
