"""Deploying to an environment as to MWAA: ``aws s3 sync`` into its bucket, the DAG appears in Airflow;
``sync --delete`` removes it again (the shared Airflow 3 environment, the unchanged AWS CLI)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import OpenMwaaServer, invoke

pytestmark = pytest.mark.e2e

DAG = """\
import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False):
    EmptyOperator(task_id="noop")
"""


def _aws(server: OpenMwaaServer, *args: str) -> str:
    aws = Path(sys.executable).parent / "aws"
    done = subprocess.run(
        [str(aws), *args], env=server.client_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"aws {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _dag(server: OpenMwaaServer, env: str, dag_id: str) -> dict[str, object] | None:
    mwaa = server.client()
    try:
        response: dict[str, object] = invoke(server, env, f"/dags/{dag_id}")["RestApiResponse"]
    except mwaa.exceptions.RestApiClientException as exc:
        if exc.response.get("RestApiStatusCode") == 404:
            return None
        raise
    return response


def test_sync_a_dag_in_and_out_of_airflow(server: OpenMwaaServer, af3_env: str, tmp_path: Path) -> None:
    bucket = f"bucket-{af3_env.lower()}"
    dag_id = f"s3_sync_{uuid.uuid4().hex[:8]}"
    local = tmp_path / "dags"
    local.mkdir()
    (local / f"{dag_id}.py").write_text(DAG.format(dag_id=dag_id))
    # Into a folder of its own below dags/, so --delete leaves the shared example DAGs alone.
    target = f"s3://{bucket}/dags/s3e2e-{dag_id}/"
    _aws(server, "s3", "sync", str(local), target, "--delete")
    assert (server.buckets / bucket / "dags" / f"s3e2e-{dag_id}" / f"{dag_id}.py").is_file()

    deadline = time.monotonic() + 120
    while (dag := _dag(server, af3_env, dag_id)) is None:
        assert time.monotonic() < deadline, f"{dag_id} did not appear in Airflow within 120 s"
        time.sleep(1)
    assert dag["dag_id"] == dag_id
    assert dag_id in _aws(server, "s3", "ls", target)

    (local / f"{dag_id}.py").unlink()
    _aws(server, "s3", "sync", str(local), target, "--delete")
    assert not (server.buckets / bucket / "dags" / f"s3e2e-{dag_id}" / f"{dag_id}.py").exists()
    deadline = time.monotonic() + 120
    while True:  # Airflow marks a DAG whose file is gone as stale (it keeps its history)
        dag = _dag(server, af3_env, dag_id)
        if dag is None or dag.get("is_stale") is True:
            break
        assert time.monotonic() < deadline, f"{dag_id} still active 120 s after its file went: {dag}"
        time.sleep(1)
