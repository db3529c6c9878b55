"""The JoinWorkerPool shapes: a grant round-trips, hides its secrets, and is parsed strictly."""

from __future__ import annotations

import json

import pytest

from openmwaa.errors import ValidationError
from openmwaa.wire.worker_pool import (
    SourceObject,
    WorkerPoolGrant,
    WorkerSources,
    parse_join_request,
)

GRANT = WorkerPoolGrant(
    name="env",
    arn="arn:aws:airflow:us-east-1:123456789012:environment/env",
    airflow_version="3.3.1",
    queue="openmwaa-env",
    sources=WorkerSources(
        bucket="b", dags_prefix="dags/", requirements=SourceObject("requirements.txt", "v1")
    ),
    execution_api_path="/_openmwaa/execution/env/",
    airflow_variables={"AIRFLOW__CORE__FERNET_KEY": "fernet-secret"},
)


def test_a_grant_round_trips() -> None:
    assert WorkerPoolGrant.from_json(GRANT.to_json()) == GRANT


def test_its_repr_shows_no_secret() -> None:
    assert "fernet-secret" not in repr(GRANT)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("Queue"),
        lambda d: d.update(Queue=7),
        lambda d: d.update(AirflowVariables={"A": 1}),
        lambda d: d.update(AirflowVariables=["A"]),
        lambda d: d["Sources"].update(Plugins={"Key": "p.zip"}),
        lambda d: d.update(Sources=None),
    ],
)
def test_anything_else_is_not_a_grant(mutate: object) -> None:
    document = json.loads(GRANT.to_json())
    mutate(document)  # type: ignore[operator]
    with pytest.raises(ValidationError):
        WorkerPoolGrant.from_json(json.dumps(document).encode())


def test_not_json_is_not_a_grant() -> None:
    with pytest.raises(ValidationError):
        WorkerPoolGrant.from_json(b"<html>")


@pytest.mark.parametrize(
    ("body", "name"),
    [(b"", None), (b"{}", None), (b'{"WorkerName": "gpu-1.example"}', "gpu-1.example")],
)
def test_join_requests(body: bytes, name: str | None) -> None:
    assert parse_join_request(body) == name


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"{",
        b'{"WorkerName": "a b"}',
        b'{"WorkerName": 3}',
        b'{"WorkerName": "-x"}',
        b'{"Other": 1}',
        b'{"WorkerName": "' + b"a" * 64 + b'"}',
        b" " * 5000,
    ],
)
def test_bad_join_requests_are_refused(body: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_join_request(body)
