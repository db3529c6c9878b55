"""The remote worker's configuration: the environment's, with this machine's paths put back."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.errors import ValidationError
from openmwaa.runtime.airflow_config import airflow_plugin_dir
from openmwaa.wire.worker_pool import WorkerPoolGrant, WorkerSources
from openmwaa.worker.agent import worker_variables
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
