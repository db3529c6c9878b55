"""EnvironmentClass and the counts it bounds, through the real app with boto3: every rule answers
a ValidationException that botocore turns into its modeled exception, before anything is stored.

Valid input here still fails, later, on the source bucket (no bucket exists in these tests): that
error proves the class checks let it through, and no Airflow is ever started.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from tests.api.conftest import ACCOUNT, ENV_ARN, REGION, ApiServer

CLASSES = "[mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge, mw1.2xlarge]"
UPDATABLE = "class-rules"


def create_params(**extra: Any) -> dict[str, Any]:
    return {
        "Name": "class-new",
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/exec",
        "SourceBucketArn": "arn:aws:s3:::bucket-that-is-not-there",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-a"]},
        **extra,
    }


def create_error(api: ApiServer, **extra: Any) -> str:
    mwaa = api.client()
    with pytest.raises(mwaa.exceptions.ValidationException) as exc:
        mwaa.create_environment(**create_params(**extra))
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(exc.value.response["Error"]["Message"])


@pytest.fixture(scope="module")
def updatable(api: ApiServer) -> str:
    """An AVAILABLE mw1.small environment with MWAA's default counts (a record: no Airflow)."""
    config = {
        "AirflowVersion": "3.3.1",
        "SourceBucketArn": "arn:aws:s3:::bucket-that-is-not-there",
        "DagS3Path": "dags",
        "EnvironmentClass": "mw1.small",
        "MinWebservers": 2,
        "MaxWebservers": 2,
        "Schedulers": 2,
        "MinWorkers": 1,
        "MaxWorkers": 10,
    }
    api.services.repository.insert(
        EnvironmentRecord(
            key=EnvironmentKey(ACCOUNT, REGION, UPDATABLE),
            arn=ENV_ARN + UPDATABLE,
            status="AVAILABLE",
            created_at=time.time(),
            config=config,
            previous_config=None,
            last_update=None,
            tags={},
            secrets={},
        )
    )
    return UPDATABLE


def update_error(api: ApiServer, name: str, **changes: Any) -> str:
    mwaa = api.client()
    with pytest.raises(mwaa.exceptions.ValidationException) as exc:
        mwaa.update_environment(Name=name, **changes)
    return str(exc.value.response["Error"]["Message"])


@pytest.mark.parametrize("name", ["foo", "mw1.Small", "mw1.3xlarge", "mw2.micro"])
def test_an_unknown_class_is_refused_on_create_and_update(api: ApiServer, updatable: str, name: str) -> None:
    expected = (
        f"1 validation error detected: Value '{name}' at 'environmentClass' failed to satisfy constraint: "
        f"Member must satisfy enum value set: {CLASSES}"
    )
    assert create_error(api, EnvironmentClass=name) == expected
    assert update_error(api, updatable, EnvironmentClass=name) == expected
    record = api.services.repository.get(EnvironmentKey(ACCOUNT, REGION, updatable))
    assert record is not None and record.config["EnvironmentClass"] == "mw1.small"


@pytest.mark.parametrize(
    "name", ["mw1.micro", "mw1.small", "mw1.medium", "mw1.large", "mw1.xlarge", "mw1.2xlarge"]
)
def test_every_class_of_mwaas_passes(api: ApiServer, name: str) -> None:
    # The next check (the bucket) is what fails: the class and its default counts were accepted.
    assert "bucket-that-is-not-there" in create_error(api, EnvironmentClass=name)


@pytest.mark.parametrize(
    ("extra", "member", "value", "constraint"),
    [
        # Model docs of Min/MaxWebservers and Schedulers: 2 to 5 above mw1.micro.
        ({"MinWebservers": 1, "MaxWebservers": 2}, "minWebservers", 1, "greater than or equal to 2"),
        ({"MaxWebservers": 6}, "maxWebservers", 6, "less than or equal to 5"),
        ({"Schedulers": 1}, "schedulers", 1, "greater than or equal to 2"),
        ({"Schedulers": 0}, "schedulers", 0, "greater than or equal to 2"),
        # The FAQ: at most 25 workers (the model has no maximum).
        ({"MaxWorkers": 26}, "maxWorkers", 26, "less than or equal to 25"),
    ],
)
def test_counts_outside_the_class_bounds(
    api: ApiServer, extra: dict[str, int], member: str, value: int, constraint: str
) -> None:
    message = create_error(api, EnvironmentClass="mw1.medium", **extra)
    assert message == (
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
        f"Member must have value {constraint} for environment class mw1.medium"
    )


@pytest.mark.parametrize(
    "member", ["MinWebservers", "MaxWebservers", "Schedulers", "MinWorkers", "MaxWorkers"]
)
def test_mw1_micro_runs_one_of_each(api: ApiServer, member: str) -> None:
    extra = {member: 2}
    if member == "MinWebservers":
        extra["MaxWebservers"] = 2
    if member == "MinWorkers":
        extra["MaxWorkers"] = 2
    message = create_error(api, EnvironmentClass="mw1.micro", **extra)
    path = member[:1].lower() + member[1:]
    assert (
        f"Value '2' at '{path}' failed to satisfy constraint: Member must have value less than or equal to 1 "
        in message
    )
    assert "for environment class mw1.micro" in message
    assert "bucket-that-is-not-there" in create_error(
        api, EnvironmentClass="mw1.micro", **dict.fromkeys(extra, 1)
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"MinWorkers": 5, "MaxWorkers": 4},
            "Value '5' at 'minWorkers' failed to satisfy constraint: Member must have value less than or "
            "equal to MaxWorkers (4)",
        ),
        (
            {"MinWebservers": 4, "MaxWebservers": 3},
            "Value '4' at 'minWebservers' failed to satisfy constraint: Member must have value less than or "
            "equal to MaxWebservers (3)",
        ),
        # MaxWorkers left out: its default (10) is what MinWorkers is compared with, and the message says so.
        (
            {"MinWorkers": 11},
            "Value '11' at 'minWorkers' failed to satisfy constraint: Member must have value less than or "
            "equal to MaxWorkers (10)",
        ),
    ],
)
def test_min_must_not_exceed_max(api: ApiServer, extra: dict[str, int], expected: str) -> None:
    assert create_error(api, **extra) == f"1 validation error detected: {expected}"


def test_update_checks_the_merged_configuration(api: ApiServer, updatable: str) -> None:
    # mw1.micro with the environment's two schedulers and web servers.
    message = update_error(api, updatable, EnvironmentClass="mw1.micro")
    assert message.startswith("4 validation errors detected: ")
    for member in ("minWebservers", "maxWebservers", "schedulers"):
        assert f"Value '2' at '{member}' (the current value) failed to satisfy constraint" in message
    assert "Value '10' at 'maxWorkers' (the current value)" in message
    # A count alone, against the class in force.
    assert "at 'schedulers' failed" in update_error(api, updatable, Schedulers=1)
    assert "at 'minWorkers' failed" in update_error(api, updatable, MinWorkers=12)
    assert "equal to MaxWebservers (2)" in update_error(api, updatable, MinWebservers=3)
    record = api.services.repository.get(EnvironmentKey(ACCOUNT, REGION, updatable))
    assert record is not None and record.status == "AVAILABLE" and record.config["Schedulers"] == 2
