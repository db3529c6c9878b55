"""The execution role's credentials endpoint, read by botocore's own container credentials provider."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.credentials import ContainerProvider
from botocore.exceptions import ClientError, CredentialRetrievalError

from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.services.execution_role import SESSION_NAME, credentials_token, task_environment
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from tests.api.conftest import ACCOUNT, ENV_ARN, REGION, ApiServer

IAM_ROLE = f"arn:aws:iam::{ACCOUNT}:role/"


def add_environment(api: ApiServer, name: str, role: str) -> EnvironmentSecrets:
    secrets = EnvironmentSecrets.generate()
    api.services.repository.insert(
        EnvironmentRecord(
            key=EnvironmentKey(ACCOUNT, REGION, name),
            arn=ENV_ARN + name,
            status="AVAILABLE",
            created_at=time.time(),
            config={"AirflowVersion": "3.3.1", "ExecutionRoleArn": IAM_ROLE + role},
            previous_config=None,
            last_update=None,
            tags={},
            secrets=dataclasses.asdict(secrets),
        )
    )
    return secrets


def provider(api: ApiServer, name: str, secrets: EnvironmentSecrets) -> ContainerProvider:
    environ = task_environment(secrets, name=name, api_url=api.endpoint_url, region=REGION)
    return ContainerProvider(environ=environ)


@pytest.fixture(scope="module")
def role_env(api: ApiServer) -> tuple[str, EnvironmentSecrets]:
    return "with-role", add_environment(api, "with-role", "MwaaExecution")


def test_a_task_is_its_execution_role(api: ApiServer, role_env: tuple[str, EnvironmentSecrets]) -> None:
    name, secrets = role_env
    credentials = provider(api, name, secrets).load()
    assert credentials is not None
    frozen = credentials.get_frozen_credentials()
    session = boto3.Session(
        aws_access_key_id=frozen.access_key,
        aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token,
        region_name=REGION,
    )
    sts = session.client("sts", endpoint_url=api.endpoint_url)
    assert sts.get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/MwaaExecution/{SESSION_NAME}"
    )
    # Its calls are authorized by the role's policies: GetEnvironment yes, anything else no.
    mwaa = session.client("mwaa", endpoint_url=api.endpoint_url, config=Config(inject_host_prefix=False))
    assert mwaa.get_environment(Name=name)["Environment"]["Name"] == name
    with pytest.raises(ClientError) as denied:
        mwaa.delete_environment(Name=name)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_credentials_are_reused_until_close_to_expiry(
    api: ApiServer, role_env: tuple[str, EnvironmentSecrets]
) -> None:
    name, secrets = role_env
    first = provider(api, name, secrets).load()
    second = provider(api, name, secrets).load()
    assert first is not None and second is not None
    assert first.access_key == second.access_key  # one session per environment, not per task


def fetch(api: ApiServer, name: str, token: str | None, method: str = "GET") -> requests.Response:
    headers = {} if token is None else {"Authorization": token}
    url = f"{api.endpoint_url}/_openmwaa/container-credentials/{name}"
    return requests.request(method, url, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "case", ["wrong token", "no token", "another environment's token", "unknown environment"]
)
def test_only_the_environments_own_token_is_accepted(
    api: ApiServer, role_env: tuple[str, EnvironmentSecrets], case: str
) -> None:
    name, secrets = role_env
    other = add_environment(api, f"other-{abs(hash(case)) % 10**6}", "MwaaExecution")
    token: dict[str, Any] = {
        "wrong token": _changed_last(credentials_token(secrets)),
        "no token": None,
        "another environment's token": credentials_token(other),
        "unknown environment": credentials_token(secrets),
    }
    target = "no-such-env" if case == "unknown environment" else name
    answer = fetch(api, target, token[case])
    assert answer.status_code == 403
    assert "AccessKeyId" not in answer.text
    assert answer.json()["Message"] == "The container credentials token is not valid for this environment."


@pytest.mark.parametrize(("method", "name"), [("POST", "with-role"), ("GET", "bad/name"), ("GET", "x" * 81)])
def test_malformed_requests_are_refused(api: ApiServer, method: str, name: str) -> None:
    assert fetch(api, name, "t", method).status_code == 400


@pytest.mark.parametrize(
    ("role", "reason"),
    [
        ("NotInIam", "is not a role in openmwaa's IAM"),
        ("EnvReader", "does not let airflow.amazonaws.com or airflow-env.amazonaws.com assume it"),
    ],
)
def test_no_credentials_and_a_reason_when_the_role_cannot_be_assumed(
    api: ApiServer, role: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"role-{role.lower()}"
    secrets = add_environment(api, name, role)
    answer = fetch(api, name, credentials_token(secrets))
    assert answer.status_code == 403 and reason in answer.json()["Message"]
    with pytest.raises(CredentialRetrievalError):
        provider(api, name, secrets).load()
    assert any(reason in record.getMessage() for record in caplog.records)


def test_task_environment_points_boto3_at_openmwaa() -> None:
    secrets = EnvironmentSecrets.generate()
    env = task_environment(secrets, name="e", api_url="http://127.0.0.1:8750", region="eu-west-1")
    assert (
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:8750/_openmwaa/container-credentials/e"
    )
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == credentials_token(secrets)
    assert env["AWS_ENDPOINT_URL_STS"] == env["AWS_ENDPOINT_URL_MWAA"] == "http://127.0.0.1:8750"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["AIRFLOW_ENV_NAME"] == "e"
    assert env["AWS_DISABLE_HOST_PREFIX_INJECTION"] == "true"  # MWAA's api./env. host prefixes
    assert credentials_token(secrets) != credentials_token(EnvironmentSecrets.generate())


def _changed_last(token: str) -> str:
    """``token`` with a different last character (always: ``[:-1] + "0"`` was the same 1 in 16)."""
    return token[:-1] + ("1" if token.endswith("0") else "0")
