"""The remote worker's configuration: the environment's, with this machine's paths put back."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from openmwaa.errors import ValidationError
from openmwaa.runtime.airflow_config import airflow_plugin_dir
from openmwaa.runtime.installer import Runtime
from openmwaa.wire.worker_pool import WorkerPoolGrant, WorkerSources
from openmwaa.worker.agent import RESTART, PreparedWorker, WorkerProcess, worker_variables
from openmwaa.worker.join import Endpoint


def _grant(execution_api_path: str | None) -> WorkerPoolGrant:
    return WorkerPoolGrant(
        name="env",
        arn="arn:aws:airflow:us-east-1:123456789012:environment/env",
        airflow_version="3.3.1",
        queue="q",
        sources=WorkerSources(bucket="b", dags_prefix="dags/"),
        execution_api_path=execution_api_path,
        airflow_variables={
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": "/server/only/dags",
        },
    )


def test_paths_are_the_workers_own(tmp_path: Path) -> None:
    env = worker_variables(
        _grant(None),
        Endpoint("https://openmwaa.example:8751"),
        home=tmp_path,
        plugins_dir=tmp_path / "plugins" / "x",
        site_dir=tmp_path / "site" / "y",
    )
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["PYTHONPATH"].split(":") == [
        str(airflow_plugin_dir()),
        str(tmp_path / "site" / "y"),
        str(tmp_path / "plugins" / "x"),
    ]
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in env  # Airflow 2: no execution API


def test_airflow_3_reaches_the_execution_api_through_openmwaa(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    env = worker_variables(
        _grant("/_openmwaa/execution/env/"),
        Endpoint("https://openmwaa.example:8751/", str(ca)),
        home=tmp_path,
        plugins_dir=tmp_path / "p",
        site_dir=None,
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        "https://openmwaa.example:8751/_openmwaa/execution/env/"
    )
    assert env["AIRFLOW__API__SSL_CERT"] == str(ca)  # the Task SDK verifies with it
    assert env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] == "30"  # a network away, not next door


def test_the_environments_execution_api_timeout_wins(tmp_path: Path) -> None:
    grant = _grant("/_openmwaa/execution/env/")
    configured = WorkerPoolGrant(
        **{
            **grant.__dict__,
            "airflow_variables": {**grant.airflow_variables, "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "12"},
        }
    )
    env = worker_variables(
        configured, Endpoint("https://h:1"), home=tmp_path, plugins_dir=tmp_path, site_dir=None
    )
    assert env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] == "12"


@pytest.mark.parametrize(
    "url",
    [
        "http://openmwaa.example:8750",  # secrets in the clear
        "http://10.0.0.1:8750",
        "ftp://host",
        "https://",
        "https://host:8751/path",
    ],
)
def test_endpoints_that_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        Endpoint(url)


@pytest.mark.parametrize("url", ["https://host:8751", "http://127.0.0.1:8750", "http://[::1]:8750"])
def test_endpoints_that_are_accepted(url: str) -> None:
    assert Endpoint(url).base == url


class NoDags:
    def __init__(self) -> None:
        self.syncs = 0

    def sync_dags(self) -> int:
        self.syncs += 1
        return 0


def _sleeper(tmp_path: Path) -> PreparedWorker:
    """A stand-in for ``airflow celery worker``: a process that runs until it is stopped."""
    python = Path(sys.executable)
    runtime = Runtime("3.3.1", 3, tmp_path, python, python.parent)
    (tmp_path / "logs").mkdir(exist_ok=True)
    argv = (sys.executable, "-c", "import time; time.sleep(120)")
    return PreparedWorker(
        runtime, tmp_path, argv, {"PATH": "/usr/bin:/bin"}, tmp_path / "logs" / "worker.log"
    )


def test_a_changed_environment_restarts_the_worker(tmp_path: Path) -> None:
    sync = NoDags()
    asked: list[int] = []

    def still_current() -> bool:
        asked.append(sync.syncs)
        return len(asked) < 2

    process = WorkerProcess(
        _sleeper(tmp_path),
        sync,  # type: ignore[arg-type]
        sync_interval=0.05,
        still_current=still_current,
        rejoin_every=3,
    )
    started = time.monotonic()
    assert process.run() == RESTART
    assert asked == [3, 6]  # every third sync; the second answer said it changed
    assert time.monotonic() - started < 30
    assert not processes_in_session_of(tmp_path)


def test_a_failed_check_keeps_the_worker_and_stop_ends_it(tmp_path: Path) -> None:
    sync = NoDags()

    def unreachable() -> bool:
        if sync.syncs >= 4:
            process.stop()
        raise OSError("openmwaa is restarting")

    process = WorkerProcess(
        _sleeper(tmp_path),
        sync,  # type: ignore[arg-type]
        sync_interval=0.05,
        still_current=unreachable,
        rejoin_every=2,
    )
    assert process.run() == 0
    assert sync.syncs >= 4


def test_a_worker_that_exits_ends_the_run_with_its_code(tmp_path: Path) -> None:
    prepared = _sleeper(tmp_path)
    exiting = PreparedWorker(
        prepared.runtime,
        prepared.home,
        (sys.executable, "-c", "raise SystemExit(7)"),
        prepared.env,
        prepared.log_path,
    )
    assert WorkerProcess(exiting, NoDags(), sync_interval=0.05).run() == 7  # type: ignore[arg-type]


def processes_in_session_of(home: Path) -> list[int]:
    """Processes still running from ``home`` (the stand-in worker's working directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == home.resolve():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
