"""IAM end to end: a real server, boto3 and the AWS CLI as an allowed user, a denied user and an
assumed role, and InvokeRestApi running in real Airflow as the role IAM grants."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from tests.e2e.conftest import OpenMwaaServer, wait_until_known

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
AWS = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws")
ENV_ARN = f"arn:aws:airflow:us-east-1:{ACCOUNT}:environment/"
ROLE_ARN = f"arn:aws:airflow:us-east-1:{ACCOUNT}:role/"


@dataclass(frozen=True)
class Key:
    access_key_id: str
    secret_access_key: str


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def add_user(editor: IdentitiesEditor, name: str, *statements: dict[str, Any]) -> Key:
    editor.add_user(name)
    if statements:
        editor.put_user_policy(name, "inline", _policy(*statements))
    key = editor.create_access_key(name)
    return Key(key.access_key_id, key.secret_access_key)


@pytest.fixture(scope="module")
def users(server: OpenMwaaServer, af3_env: str) -> Iterator[dict[str, Key]]:
    editor = IdentitiesEditor(
        server.data_dir / "iam.yaml", account_id=ACCOUNT, box=SecretBox.open(server.data_dir)
    )
    env = af3_env
    keys = {
        "reader": add_user(
            editor,
            "iam-e2e-reader",
            {
                "Effect": "Allow",
                "Action": ["airflow:GetEnvironment", "airflow:ListEnvironments"],
                "Resource": "*",
            },
        ),
        "nobody": add_user(editor, "iam-e2e-nobody"),
        "viewer": add_user(
            editor,
            "iam-e2e-viewer",
            {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": f"{ROLE_ARN}{env}/Viewer"},
        ),
        "viewer-admin": add_user(
            editor,
            "iam-e2e-viewer-admin",
            {
                "Effect": "Allow",
                "Action": "airflow:InvokeRestApi",
                "Resource": [f"{ROLE_ARN}{env}/Viewer", f"{ROLE_ARN}{env}/Admin"],
            },
        ),
        "assumer": add_user(
            editor,
            "iam-e2e-assumer",
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"arn:aws:iam::{ACCOUNT}:role/IamE2eOps",
            },
        ),
    }
    editor.create_role(
        "IamE2eOps",
        _policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/iam-e2e-assumer"},
                "Action": "sts:AssumeRole",
            }
        ),
    )
    editor.put_role_policy(
        "IamE2eOps",
        "ops",
        _policy(
            {
                "Effect": "Allow",
                "Action": ["airflow:GetEnvironment", "airflow:ListEnvironments"],
                "Resource": "*",
            },
            {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": f"{ROLE_ARN}{env}/Viewer"},
        ),
    )
    for key in keys.values():
        wait_until_known(server, key.access_key_id, key.secret_access_key)
    yield keys


def as_user(server: OpenMwaaServer, key: Key, service: str = "mwaa", **kwargs: Any) -> Any:
    return server.client(
        service, aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key, **kwargs
    )


def aws_cli(
    server: OpenMwaaServer, key: Key | dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = server.client_env()
    if isinstance(key, Key):
        env.update(AWS_ACCESS_KEY_ID=key.access_key_id, AWS_SECRET_ACCESS_KEY=key.secret_access_key)
    else:
        env.update(key)
    return subprocess.run(
        [AWS, *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


# boto3 ------------------------------------------------------------------------------------


def test_boto3_allowed_and_denied(server: OpenMwaaServer, af3_env: str, users: dict[str, Key]) -> None:
    reader = as_user(server, users["reader"])
    assert af3_env in reader.list_environments()["Environments"]
    assert reader.get_environment(Name=af3_env)["Environment"]["Status"] == "AVAILABLE"
    with pytest.raises(reader.exceptions.AccessDeniedException) as exc:
        reader.update_environment(Name=af3_env, MaxWorkers=3)
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/iam-e2e-reader is not authorized to perform: "
        f"airflow:UpdateEnvironment on resource: {ENV_ARN}{af3_env} because no identity-based policy "
        "allows the airflow:UpdateEnvironment action"
    )
    nobody = as_user(server, users["nobody"])
    with pytest.raises(nobody.exceptions.AccessDeniedException):
        nobody.get_environment(Name=af3_env)
    with pytest.raises(nobody.exceptions.AccessDeniedException) as exc:
        nobody.invoke_rest_api(Name=af3_env, Path="/dags", Method="GET")
    assert exc.value.response["Error"]["Message"] == "No Airflow role granted in IAM."
    # Nothing changed behind the denial.
    assert server.client().get_environment(Name=af3_env)["Environment"]["Status"] == "AVAILABLE"


def test_boto3_assumed_role(server: OpenMwaaServer, af3_env: str, users: dict[str, Key]) -> None:
    sts = as_user(server, users["assumer"], "sts")
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/IamE2eOps", RoleSessionName="boto3-run"
    )["Credentials"]
    session = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    identity = server.client("sts", **session).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/IamE2eOps/boto3-run"
    mwaa = server.client("mwaa", **session)
    assert mwaa.get_environment(Name=af3_env)["Environment"]["Name"] == af3_env
    dags = mwaa.invoke_rest_api(Name=af3_env, Path="/dags", Method="GET")["RestApiResponse"]
    assert "hello_openmwaa" in {d["dag_id"] for d in dags["dags"]}
    with pytest.raises(mwaa.exceptions.AccessDeniedException):
        mwaa.delete_environment(Name=af3_env)
    # The user itself has only sts:AssumeRole.
    with pytest.raises(ClientError):
        as_user(server, users["assumer"]).get_environment(Name=af3_env)


# AWS CLI ----------------------------------------------------------------------------------


def test_aws_cli_allowed_user(server: OpenMwaaServer, af3_env: str, users: dict[str, Key]) -> None:
    done = aws_cli(server, users["reader"], "mwaa", "get-environment", "--name", af3_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Environment"]["Status"] == "AVAILABLE"


def test_aws_cli_denied_user(server: OpenMwaaServer, af3_env: str, users: dict[str, Key]) -> None:
    done = aws_cli(server, users["nobody"], "mwaa", "get-environment", "--name", af3_env)
    assert done.returncode != 0
    assert "AccessDeniedException" in done.stderr
    assert (
        f"User: arn:aws:iam::{ACCOUNT}:user/iam-e2e-nobody is not authorized to perform: "
        f"airflow:GetEnvironment on resource: {ENV_ARN}{af3_env}" in done.stderr
    )
    assert done.stdout == ""


def test_aws_cli_assumed_role(server: OpenMwaaServer, af3_env: str, users: dict[str, Key]) -> None:
    done = aws_cli(
        server,
        users["assumer"],
        "sts",
        "assume-role",
        "--role-arn",
        f"arn:aws:iam::{ACCOUNT}:role/IamE2eOps",
        "--role-session-name",
        "cli-run",
    )
    assert done.returncode == 0, done.stderr
    credentials = json.loads(done.stdout)["Credentials"]
    session = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
    done = aws_cli(server, session, "sts", "get-caller-identity")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/IamE2eOps/cli-run"
    done = aws_cli(server, session, "mwaa", "list-environments")
    assert done.returncode == 0, done.stderr
    assert af3_env in json.loads(done.stdout)["Environments"]
    done = aws_cli(server, session, "mwaa", "delete-environment", "--name", af3_env)
    assert done.returncode != 0 and "AccessDeniedException" in done.stderr
    assert (
        "assumed-role/IamE2eOps/cli-run is not authorized to perform: airflow:DeleteEnvironment"
        in done.stderr
    )


# InvokeRestApi: which Airflow role --------------------------------------------------------


def test_viewer_reads_but_cannot_trigger(server: OpenMwaaServer, af3_env: str, users: dict[str, Key]) -> None:
    mwaa = as_user(server, users["viewer"])
    dags = mwaa.invoke_rest_api(Name=af3_env, Path="/dags", Method="GET")
    assert dags["RestApiStatusCode"] == 200
    assert "hello_openmwaa" in {d["dag_id"] for d in dags["RestApiResponse"]["dags"]}
    with pytest.raises(mwaa.exceptions.RestApiClientException) as exc:
        mwaa.invoke_rest_api(
            Name=af3_env, Path="/dags/hello_openmwaa/dagRuns", Method="POST", Body={"logical_date": None}
        )
    # Airflow's own RBAC refused it, and MWAA's shape carries Airflow's status.
    assert exc.value.response["RestApiStatusCode"] == 403
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_viewer_and_admin_runs_as_admin(server: OpenMwaaServer, af3_env: str, users: dict[str, Key]) -> None:
    mwaa = as_user(server, users["viewer-admin"])
    run = mwaa.invoke_rest_api(
        Name=af3_env,
        Path="/dags/hello_openmwaa/dagRuns",
        Method="POST",
        Body={"logical_date": None, "dag_run_id": f"iam-e2e-{int(time.time() * 1000)}"},
    )
    assert run["RestApiStatusCode"] == 200
    assert run["RestApiResponse"]["dag_id"] == "hello_openmwaa"
