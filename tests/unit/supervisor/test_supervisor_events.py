"""The Supervisor facade without Airflow: events for failures, delete, shutdown."""

from __future__ import annotations

import queue
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmwaa.runtime.installer import RuntimeManager
from openmwaa.supervisor import EnvironmentEvent, EnvironmentSecrets, EnvironmentSpec, Supervisor
from openmwaa.supervisor.pidfiles import PidRecord, write_pidfile
from openmwaa.supervisor.proc import read_stat


class Events:
    def __init__(self) -> None:
        self.q: queue.Queue[EnvironmentEvent] = queue.Queue()

    def __call__(self, event: EnvironmentEvent) -> None:
        self.q.put(event)

    def next_outcome(self, timeout: float = 30) -> EnvironmentEvent:
        while True:
            event = self.q.get(timeout=timeout)
            if event.kind != "progress":
                return event


def spec(tmp_path: Path, version: str = "3.3.1") -> EnvironmentSpec:
    return EnvironmentSpec(
        key="123456789012/us-east-1/env",
        name="env",
        airflow_version=version,
        home=tmp_path / "home",
        dags_dir=tmp_path / "dags",
        plugins_zip=None,
        requirements_file=None,
        startup_script=None,
        airflow_config={"core.default_task_retries": "1"},
        secrets=EnvironmentSecrets.generate(),
        database_url="postgresql://user:hunter2@127.0.0.1/db",
    )


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def supervisor(tmp_path: Path, events: Events) -> Iterator[Supervisor]:
    runtimes = RuntimeManager(tmp_path / "cache", uv=str(tmp_path / "no-such-uv"))
    sup = Supervisor(runtimes=runtimes, on_event=events, start_timeout=30)
    yield sup
    sup.shutdown(timeout=10)


def test_install_failure_is_a_create_failure_the_user_can_read(
    supervisor: Supervisor, events: Events, tmp_path: Path
) -> None:
    supervisor.create(spec(tmp_path))
    event = events.next_outcome()
    assert event.kind == "create_failed"
    assert event.error_code == "AIRFLOW_INSTALL_FAILED"
    assert "no-such-uv" in event.message
    assert supervisor.endpoint("123456789012/us-east-1/env") is None


def test_delete_ends_leftover_processes_and_removes_files(
    supervisor: Supervisor, events: Events, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "airflow.db").write_text("x")
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        stat = read_stat(orphan.pid)
        assert stat is not None
        write_pidfile(home / "run", PidRecord("scheduler", orphan.pid, stat.start_ticks))
        supervisor.delete("123456789012/us-east-1/env", home, None)
        event = events.next_outcome()
        assert event.kind == "deleted"
        assert orphan.wait(timeout=10) == -15
        assert not home.exists()
    finally:
        orphan.kill()
        orphan.wait()


def test_shutdown_then_nothing_more_runs(supervisor: Supervisor, events: Events, tmp_path: Path) -> None:
    supervisor.shutdown(timeout=5)
    supervisor.create(spec(tmp_path))
    with pytest.raises(queue.Empty):
        events.q.get(timeout=1)


def test_specs_and_secrets_keep_credentials_out_of_reprs(tmp_path: Path) -> None:
    s = spec(tmp_path)
    text = repr(s)
    assert "hunter2" not in text
    assert s.secrets.jwt_secret not in text
    assert "core.default_task_retries" not in text
    assert "env" in text
