"""External-S3 mode against a real third-party S3 (SeaweedFS, started here): an environment created
from a versioned bucket there with a pinned requirements version, DAGs appearing in and
disappearing from Airflow after put and delete on that S3, and openmwaa's own S3 switched off.

One openmwaa server and one Airflow 3 environment for the whole module (Airflow 2 reads its
sources through the same code; its own environment would double this module's cost)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import (
    AIRFLOW3,
    OpenMwaaServer,
    invoke,
    new_data_dir,
    request_environment,
    start_server,
    stop_server,
    wait_for_status,
)
from tests.e2e.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedFs, start_seaweedfs, stop_seaweedfs

pytestmark = pytest.mark.e2e

BUCKET = "mwaa-source"
ENV = "external-s3"
POLL_SECONDS = 2
DAG = """\
import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False):
    EmptyOperator(task_id="noop")
"""


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFs]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    stop_seaweedfs(server)


@pytest.fixture(scope="module")
def external(seaweedfs: SeaweedFs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenMwaaServer]:
    server = start_server(
        new_data_dir(tmp_path_factory, "external-s3"),
        extra_env={
            "OPENMWAA_SOURCE_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
            "OPENMWAA_SOURCE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "OPENMWAA_SOURCE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "OPENMWAA_SOURCE_S3_POLL_INTERVAL": str(POLL_SECONDS),
        },
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def versions(seaweedfs: SeaweedFs) -> dict[str, str]:
    """The source bucket, versioned, with two versions of requirements.txt and one DAG."""
    s3 = seaweedfs.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"# pinned-v1\n")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key="requirements.txt", Body=b"# current-v2\n")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="dags/first.py", Body=DAG.format(dag_id="external_first").encode())
    return {"v1": first, "v2": second}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _dag(server: OpenMwaaServer, dag_id: str) -> dict[str, Any] | None:
    mwaa = server.client()
    try:
        response: dict[str, Any] = invoke(server, ENV, f"/dags/{dag_id}")["RestApiResponse"]
    except mwaa.exceptions.RestApiClientException as exc:
        if exc.response.get("RestApiStatusCode") == 404:
            return None
        raise
    return response


def test_openmwaa_serves_no_s3_and_checks_sources_on_the_external_one(
    external: OpenMwaaServer, versions: dict[str, str]
) -> None:
    with pytest.raises(ClientError) as refused:
        external.client("s3").list_buckets()
    assert _code(refused) == "NotImplemented"
    assert "external S3" in refused.value.response["Error"]["Message"]
    mwaa = external.client()
    with pytest.raises(mwaa.exceptions.ValidationException, match="does not exist in the source S3"):
        request_environment(external, "no-bucket", AIRFLOW3, "no-such-bucket")
    with pytest.raises(mwaa.exceptions.ValidationException, match="no such version"):
        request_environment(
            external,
            "bad-version",
            AIRFLOW3,
            BUCKET,
            RequirementsS3Path="requirements.txt",
            RequirementsS3ObjectVersion="no-such-version-id",
        )
    names = mwaa.list_environments()["Environments"]
    assert "no-bucket" not in names and "bad-version" not in names


def test_environment_from_the_external_bucket(
    external: OpenMwaaServer, seaweedfs: SeaweedFs, versions: dict[str, str]
) -> None:
    request_environment(
        external,
        ENV,
        AIRFLOW3,
        BUCKET,
        RequirementsS3Path="requirements.txt",
        RequirementsS3ObjectVersion=versions["v1"],
    )
    env = wait_for_status(external.client(), ENV, {"AVAILABLE", "CREATE_FAILED"})
    assert env["Status"] == "AVAILABLE", f"{env.get('LastUpdate')}\n{external.log_tail()}"
    assert env["RequirementsS3ObjectVersion"] == versions["v1"]
    # The pinned version was installed, not the current one.
    home = external.data_dir / "environments" / "123456789012" / "us-east-1" / ENV
    installed = [p.read_text() for p in home.glob("site/*/.requirements.in")]
    assert installed == ["# pinned-v1\n"], installed
    deadline = time.monotonic() + 120
    while _dag(external, "external_first") is None:  # synced at create
        assert time.monotonic() < deadline, "the DAG in the bucket at create was not parsed in 120 s"
        time.sleep(1)

    s3 = seaweedfs.client()
    dag_id = f"external_{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=BUCKET, Key=f"dags/team/{dag_id}.py", Body=DAG.format(dag_id=dag_id).encode())
    put_at = time.monotonic()
    while (dag := _dag(external, dag_id)) is None:
        assert time.monotonic() < put_at + 120, f"{dag_id} did not appear in Airflow within 120 s"
        time.sleep(1)
    assert dag["dag_id"] == dag_id
    print(f"put on the external S3 -> DAG in Airflow: {time.monotonic() - put_at:.1f} s")
    mirrored = external.data_dir / "source-mirror" / BUCKET / "dags" / "team" / f"{dag_id}.py"
    assert mirrored.is_file()

    s3.delete_object(Bucket=BUCKET, Key=f"dags/team/{dag_id}.py")  # a delete marker (versioned)
    deleted_at = time.monotonic()
    while True:  # Airflow marks a DAG whose file is gone as stale (it keeps its history)
        dag = _dag(external, dag_id)
        if dag is None or dag.get("is_stale") is True:
            break
        assert time.monotonic() < deleted_at + 120, f"{dag_id} still active 120 s after its delete: {dag}"
        time.sleep(1)
    print(f"delete on the external S3 -> DAG stale in Airflow: {time.monotonic() - deleted_at:.1f} s")
    assert not mirrored.exists()
    assert _dag(external, "external_first") is not None
