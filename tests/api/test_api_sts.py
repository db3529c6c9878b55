"""STS through boto3's ``sts`` client: GetCallerIdentity, AssumeRole, and the session's credentials."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import ACCOUNT, ENV_ARN, ApiServer

ROLE = f"arn:aws:iam::{ACCOUNT}:role/EnvReader"


def session_client(api: ApiServer, service: str, credentials: dict[str, Any]) -> Any:
    return api.client(
        service,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_get_caller_identity_of_a_user(api: ApiServer) -> None:
    identity = api.client("sts", user="nobody").get_caller_identity()  # needs no permission
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/nobody"
    assert identity["Account"] == ACCOUNT
    assert identity["UserId"].startswith("AIDA")


def test_assume_role_and_use_the_session(api: ApiServer) -> None:
    sts = api.client("sts", user="assumer")
    out = sts.assume_role(RoleArn=ROLE, RoleSessionName="ci-run-7", DurationSeconds=900)
    credentials = out["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/EnvReader/ci-run-7"
    remaining = credentials["Expiration"].timestamp() - time.time()
    assert 800 < remaining <= 901

    identity = session_client(api, "sts", credentials).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/EnvReader/ci-run-7"
    assert identity["UserId"].endswith(":ci-run-7") and identity["UserId"].startswith("AROA")

    # The role's policies decide, not the user's: assumer alone may not read environments.
    as_user = api.client(user="assumer")
    with pytest.raises(as_user.exceptions.AccessDeniedException):
        as_user.get_environment(Name="avail")
    as_role = session_client(api, "mwaa", credentials)
    assert as_role.get_environment(Name="avail")["Environment"]["Status"] == "AVAILABLE"
    assert "avail" in as_role.list_environments()["Environments"]
    with pytest.raises(as_role.exceptions.AccessDeniedException) as exc:
        as_role.delete_environment(Name="avail")
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/EnvReader/ci-run-7 is not authorized to perform: "
        f"airflow:DeleteEnvironment on resource: {ENV_ARN}avail because no identity-based policy "
        "allows the airflow:DeleteEnvironment action"
    )


def test_the_session_token_is_required_and_checked(api: ApiServer) -> None:
    credentials = api.client("sts", user="assumer").assume_role(RoleArn=ROLE, RoleSessionName="s2")[
        "Credentials"
    ]
    without = api.client(
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"]
    )
    with pytest.raises(ClientError) as exc:
        without.list_environments()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    forged = session_client(
        api, "mwaa", {**credentials, "SessionToken": credentials["SessionToken"][:-4] + "AAAA"}
    )
    with pytest.raises(ClientError) as exc:
        forged.list_environments()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_an_expired_session_token(api: ApiServer) -> None:
    issued = api.services.identities.sessions.issue(
        role_name="EnvReader",
        session_name="long-ago",
        source_arn=f"arn:aws:iam::{ACCOUNT}:user/assumer",
        duration=900,
        now=time.time() - 7200,
    )
    mwaa = session_client(
        api,
        "mwaa",
        {
            "AccessKeyId": issued.session.access_key_id,
            "SecretAccessKey": issued.session.secret_access_key,
            "SessionToken": issued.session_token,
        },
    )
    with pytest.raises(ClientError) as exc:
        mwaa.list_environments()
    assert type(exc.value) is ClientError
    assert exc.value.response["Error"]["Code"] == "ExpiredTokenException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(
    ("user", "role"),
    [
        ("nobody", ROLE),  # no sts:AssumeRole in the user's policies
        ("not-trusted", ROLE),  # allowed by the user's policy, but the trust policy names someone else
        ("assumer", f"arn:aws:iam::{ACCOUNT}:role/NoSuchRole"),  # answers like a denial
    ],
)
def test_assume_role_denied(api: ApiServer, user: str, role: str) -> None:
    sts = api.client("sts", user=user)
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=role, RoleSessionName="nope")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert (
        f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role}" in exc.value.response["Error"]["Message"]
    )


def test_sts_refuses_unsigned_and_misscoped_requests(api: ApiServer) -> None:
    with pytest.raises(ClientError) as exc:
        api.client("sts", user=None).get_caller_identity()
    # STS (query protocol) names these errors without the "Exception" suffix.
    assert exc.value.response["Error"]["Code"] == "MissingAuthenticationToken"
    with pytest.raises(ClientError) as exc:
        api.client("sts", user="nobody", region="eu-west-1").get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as exc:
        api.client(
            "sts", aws_access_key_id="AKIANOBODYHASTHIS000", aws_secret_access_key="x" * 40
        ).get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"
