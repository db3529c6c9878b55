"""Fixtures for the wire tests: the loaded wire, botocore's model, sample values built from the
model, and a real botocore client whose HTTP layer is MwaaWire in-process (no sockets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from openmwaa.errors import OpenMwaaError
from openmwaa.wire.error_response import serialize_error
from openmwaa.wire.model import MwaaWire

#: A valid value for every patterned string shape of the model (checked by a test).
SAMPLE_STRINGS = {
    "AirflowVersion": "2.10.3",
    "CeleryExecutorQueue": "arn:aws:sqs:us-east-1:123456789012:airflow-celery-abc",
    "CloudWatchLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:airflow-my-env-Task",
    "ConfigKey": "core.dag_concurrency",
    "ConfigValue": "16",
    "EnvironmentArn": "arn:aws:airflow:us-east-1:123456789012:environment/my-env",
    "EnvironmentName": "my-env",
    "ErrorMessage": "something failed",
    "Hostname": "abc.c2.airflow.us-east-1.on.aws",
    "IamRoleArn": "arn:aws:iam::123456789012:role/service-role/mwaa-exec",
    "IdentityCenterIdentityStoreId": "d-1234567890",
    "IdentityCenterStartUrl": "https://d-1234567890.awsapps.com/start",
    "KmsKey": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "RelativePath": "dags",
    "S3BucketArn": "arn:aws:s3:::my-airflow-bucket",
    "SecurityGroupId": "sg-0123456789abcdef0",
    "SubnetId": "subnet-0123456789abcdef0",
    "TagKey": "team",
    "TagValue": "data platform",
    "TeamNameString": "team-a",
    "UpdateSource": "SERVICE",
    "VpcEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123",
    "WebserverUrl": "https://abc.c2.airflow.us-east-1.on.aws",
    "WeeklyMaintenanceWindowStart": "TUE:03:30",
    "RestApiPath": "/dags/example/dagRuns",
}
SAMPLE_DOCUMENT = {"conf": {"paused": False, "n": [1, 2.5, None, "x"]}}
SAMPLE_TIME = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)


def sample_value(shape: Any, *, required_only: bool) -> Any:
    """A valid value for a botocore ``Shape`` (all members, or only the required ones)."""
    if getattr(shape, "is_document_type", False):
        return SAMPLE_DOCUMENT
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        names = shape.required_members if required_only else list(shape.members)
        return {n: sample_value(shape.members[n], required_only=required_only) for n in names}
    if kind == "list":
        count = max(1, meta.get("min", 0))
        return [sample_value(shape.member, required_only=required_only) for _ in range(count)]
    if kind == "map":
        return {
            sample_value(shape.key, required_only=True): sample_value(
                shape.value, required_only=required_only
            )
        }
    if kind == "string":
        if shape.enum:
            return shape.enum[-1]
        return SAMPLE_STRINGS.get(shape.name, "x" * max(1, meta.get("min", 1)))
    if kind in ("integer", "long"):
        return max(meta.get("min", 1), min(2, meta.get("max", 2)))
    if kind == "boolean":
        return True
    if kind in ("double", "float"):
        return 1.5
    if kind == "timestamp":
        return SAMPLE_TIME
    raise AssertionError(f"no sample for {shape.name} ({kind})")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


#: What a fake server does with a routed, parsed request: an output mapping, or raise.
Handler = Callable[[str, dict[str, Any]], Mapping[str, Any]]


def make_client(wire: MwaaWire, handler: Handler) -> Any:
    """A real botocore ``mwaa`` client whose HTTP layer is MwaaWire + ``handler`` (no sockets)."""
    session = botocore.session.get_session()
    client = session.create_client(
        "mwaa",
        region_name="us-east-1",
        endpoint_url="https://mwaa.test",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}),
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        split = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        try:
            match = wire.route(request.method, split.path)
            params = wire.parse_input(match.operation, match.path_params, split.query, body)
            payload = wire.serialize_output(match.operation, handler(match.operation, params))
            return AWSResponse(request.url, 200, {"content-type": "application/json"}, _Raw(payload))
        except OpenMwaaError as error:
            status, headers, payload = serialize_error(error, "req-1")
            decoded = {k.decode(): v.decode() for k, v in headers}
            return AWSResponse(request.url, status, decoded, _Raw(payload))

    client.meta.events.register("before-send.mwaa", send)
    return client


@pytest.fixture(scope="session")
def wire() -> MwaaWire:
    return MwaaWire.load()


@pytest.fixture(scope="session")
def service_model() -> Any:
    return botocore.session.get_session().get_service_model("mwaa")


@pytest.fixture(scope="session")
def sample() -> Callable[..., Any]:
    """``sample(botocore_shape, required_only=...)``: a valid value for the shape."""
    return sample_value


@pytest.fixture(scope="session")
def sample_strings() -> dict[str, str]:
    return SAMPLE_STRINGS


@pytest.fixture
def client_for(wire: MwaaWire) -> Callable[[Handler], Any]:
    """``client_for(handler)``: a botocore mwaa client answered by MwaaWire and ``handler``."""
    return lambda handler: make_client(wire, handler)
