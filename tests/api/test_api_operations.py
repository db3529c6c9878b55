"""Every MWAA operation in botocore's model, through the real app: routed, and for three callers.

admin (the bootstrap key: allowed everything) gets the operation's answer or its modeled error;
an unsigned caller gets MissingAuthenticationTokenException; a user with no policy gets AWS's
AccessDeniedException wording for the operation's IAM resource.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from tests.api.conftest import ACCOUNT, ENV_ARN, ApiServer

MISSING = "no-such-env"
OPERATIONS: list[str] = list(botocore.session.get_session().get_service_model("mwaa").operation_names)

#: Valid input for each operation, aimed at an environment that does not exist.
PARAMS: dict[str, dict[str, Any]] = {
    "CreateCliToken": {"Name": MISSING},
    "CreateEnvironment": {
        "Name": MISSING,
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/exec",
        "SourceBucketArn": "arn:aws:s3:::bucket-that-is-not-there",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-a"]},
    },
    "CreateWebLoginToken": {"Name": MISSING},
    "DeleteEnvironment": {"Name": MISSING},
    "GetEnvironment": {"Name": MISSING},
    "InvokeRestApi": {"Name": MISSING, "Path": "/dags", "Method": "GET"},
    "ListEnvironments": {},
    "ListTagsForResource": {"ResourceArn": ENV_ARN + MISSING},
    "PublishMetrics": {
        "EnvironmentName": MISSING,
        "MetricData": [{"MetricName": "SchedulerHeartbeat", "Timestamp": 1_700_000_000, "Value": 1.0}],
    },
    "TagResource": {"ResourceArn": ENV_ARN + MISSING, "Tags": {"team": "a"}},
    "UntagResource": {"ResourceArn": ENV_ARN + MISSING, "tagKeys": ["team"]},
    "UpdateEnvironment": {"Name": MISSING},
}

#: What the bootstrap admin gets: None for success, else the modeled error code.
ADMIN_OUTCOME: dict[str, str | None] = {
    "CreateEnvironment": "ValidationException",  # the source bucket does not exist
    "ListEnvironments": None,
    "PublishMetrics": "ValidationException",  # its model has no ResourceNotFoundException
    **{
        op: "ResourceNotFoundException"
        for op in PARAMS
        if op not in ("CreateEnvironment", "ListEnvironments", "PublishMetrics")
    },
}

#: The IAM resource each operation is authorized on (None: authorized on role ARNs by the handler).
RESOURCE: dict[str, str | None] = {
    "CreateCliToken": ENV_ARN + MISSING,
    "CreateEnvironment": ENV_ARN + MISSING,
    "CreateWebLoginToken": None,
    "DeleteEnvironment": ENV_ARN + MISSING,
    "GetEnvironment": ENV_ARN + MISSING,
    "InvokeRestApi": None,
    "ListEnvironments": "*",
    "ListTagsForResource": ENV_ARN + MISSING,
    "PublishMetrics": ENV_ARN + MISSING,
    "TagResource": ENV_ARN + MISSING,
    "UntagResource": ENV_ARN + MISSING,
    "UpdateEnvironment": ENV_ARN + MISSING,
}


def call(client: Any, operation: str) -> dict[str, Any]:
    method = botocore.xform_name(operation)
    return dict(getattr(client, method)(**PARAMS[operation]))


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def test_the_tables_cover_the_model() -> None:
    assert set(PARAMS) == set(OPERATIONS) == set(ADMIN_OUTCOME) == set(RESOURCE)
    assert len(OPERATIONS) >= 12


@pytest.mark.parametrize("operation", OPERATIONS)
def test_admin_gets_the_answer_or_the_modeled_error(api: ApiServer, operation: str) -> None:
    client = api.client()
    expected = ADMIN_OUTCOME[operation]
    if expected is None:
        out = call(client, operation)
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
        return
    with pytest.raises(ClientError) as exc:
        call(client, operation)
    code, status, message = error_of(exc)
    assert code == expected, message
    modeled = {shape.name for shape in client.meta.service_model.operation_model(operation).error_shapes}
    assert code in modeled, f"{operation} answered {code}, which is not among its modeled errors {modeled}"
    assert status == {"ValidationException": 400, "ResourceNotFoundException": 404}[code]
    # botocore turned it into the modeled exception class, not a plain ClientError.
    assert type(exc.value).__name__ == code


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_is_routed(api: ApiServer, operation: str) -> None:
    """Not a 404 UnknownOperation: the server recognised the operation (admin reaches its handler)."""
    try:
        call(api.client(), operation)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] != "UnknownOperationException", operation
        assert "not implemented" not in exc.response["Error"].get("Message", "")


@pytest.mark.parametrize("operation", OPERATIONS)
def test_unsigned_requests_are_refused(api: ApiServer, operation: str) -> None:
    with pytest.raises(ClientError) as exc:
        call(api.client(user=None), operation)
    code, status, _ = error_of(exc)
    assert (code, status) == ("MissingAuthenticationTokenException", 403)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_user_with_no_policy_is_denied_in_aws_words(api: ApiServer, operation: str) -> None:
    client = api.client(user="nobody")
    with pytest.raises(client.exceptions.AccessDeniedException) as exc:
        call(client, operation)
    code, status, message = error_of(exc)
    assert (code, status) == ("AccessDeniedException", 403)
    resource = RESOURCE[operation]
    if resource is None:
        # Authorized on the environment's role ARNs: none granted (and the environment's
        # existence is not revealed: it does not exist here).
        assert message == "No Airflow role granted in IAM."
    else:
        assert message == (
            f"User: arn:aws:iam::{ACCOUNT}:user/nobody is not authorized to perform: airflow:{operation} "
            f"on resource: {resource} because no identity-based policy allows the airflow:{operation} action"
        )


def test_denials_do_not_depend_on_the_environment_existing(api: ApiServer) -> None:
    nobody = api.client(user="nobody")
    for name in ("avail", MISSING):
        with pytest.raises(nobody.exceptions.AccessDeniedException) as exc:
            nobody.get_environment(Name=name)
        assert f"on resource: {ENV_ARN}{name} " in exc.value.response["Error"]["Message"]


def test_publish_metrics_for_a_known_environment(api: ApiServer) -> None:
    out = api.client().publish_metrics(
        EnvironmentName="avail",
        MetricData=[{"MetricName": "TaskInstanceQueued", "Timestamp": time.time(), "Value": 2.0}],
    )
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
