"""CloudWatch on openmwaa's endpoint, through boto3's own ``cloudwatch`` client (Smithy RPC v2
CBOR, as the pinned botocore sends it): StatsD lines sent over UDP come back as MWAA's metrics,
PublishMetrics data too; errors are the modeled exceptions; IAM decides with ``cloudwatch:*``."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from openmwaa.metrics.recorder import EnvironmentRef
from openmwaa.metrics.statsd import StatsdReceiver
from openmwaa.store.audit import AuditLog
from openmwaa.wire import cbor
from openmwaa.wire.cloudwatch import SERVICE_PATH
from tests.api.conftest import ACCOUNT, REGION, ApiServer

PREFIX = "omapitest"
JSON_TYPE = "application/x-amz-json-1.0"


@pytest.fixture(scope="module")
def receiver(api: ApiServer) -> Iterator[StatsdReceiver]:
    """A StatsD receiver feeding the API server's metric store, with one environment's prefix."""
    statsd = StatsdReceiver(api.services.metrics, lambda: {PREFIX: EnvironmentRef(ACCOUNT, REGION, "avail")})
    statsd.start()
    yield statsd
    statsd.stop()


def send(receiver: StatsdReceiver, *lines: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in lines:
            sock.sendto(line.encode(), ("127.0.0.1", receiver.bound_port or 0))


def heartbeat_statistics(cloudwatch: Any, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return dict(
        cloudwatch.get_metric_statistics(
            Namespace="AmazonMWAA",
            MetricName="SchedulerHeartbeat",
            Dimensions=[
                {"Name": "Function", "Value": "Scheduler"},
                {"Name": "Environment", "Value": "avail"},
            ],
            StartTime=now - 600,
            EndTime=now + 60,
            Period=60,
            Statistics=["Sum", "SampleCount"],
            **extra,
        )
    )


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_statsd_heartbeats_come_back_from_get_metric_statistics(
    api: ApiServer, receiver: StatsdReceiver
) -> None:
    cloudwatch = api.client("cloudwatch")
    send(
        receiver, *[f"{PREFIX}.scheduler_heartbeat:1|c" for _ in range(3)], "stranger.scheduler_heartbeat:1|c"
    )

    def total() -> float:
        points = heartbeat_statistics(cloudwatch)["Datapoints"]
        return float(sum(p["Sum"] for p in points))

    assert wait_for(lambda: total() >= 3) and total() == 3  # the stranger's prefix is nobody's
    out = heartbeat_statistics(cloudwatch)
    assert out["Label"] == "SchedulerHeartbeat"
    assert all(p["Unit"] == "Count" and p["Timestamp"].second == 0 for p in out["Datapoints"])


def test_list_metrics_and_get_metric_data(api: ApiServer, receiver: StatsdReceiver) -> None:
    cloudwatch = api.client("cloudwatch")
    send(receiver, f"{PREFIX}.pool.open_slots.default_pool:7|g", f"{PREFIX}.executor.queued_tasks:2|g")

    def listed() -> list[dict[str, Any]]:
        return list(
            cloudwatch.list_metrics(
                Namespace="AmazonMWAA", Dimensions=[{"Name": "Pool", "Value": "default_pool"}]
            )["Metrics"]
        )

    assert wait_for(listed) == [
        {
            "Namespace": "AmazonMWAA",
            "MetricName": "OpenSlots",
            "Dimensions": [
                {"Name": "Environment", "Value": "avail"},
                {"Name": "Pool", "Value": "default_pool"},
            ],
        }
    ]
    # The executor's queue is an environment metric in AWS/MWAA as well.
    wait_for(lambda: cloudwatch.list_metrics(Namespace="AWS/MWAA", MetricName="QueuedTasks")["Metrics"])
    now = time.time()
    out = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "slots",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AmazonMWAA",
                        "MetricName": "OpenSlots",
                        "Dimensions": [
                            {"Name": "Pool", "Value": "default_pool"},
                            {"Name": "Environment", "Value": "avail"},
                        ],
                    },
                    "Period": 300,
                    "Stat": "Maximum",
                },
            },
            {
                "Id": "queued",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/MWAA",
                        "MetricName": "QueuedTasks",
                        "Dimensions": [{"Name": "Environment", "Value": "avail"}],
                    },
                    "Period": 60,
                    "Stat": "Average",
                },
            },
        ],
        StartTime=now - 600,
        EndTime=now + 60,
    )
    results = {r["Id"]: r for r in out["MetricDataResults"]}
    assert results["slots"]["Values"] == [7.0] and results["slots"]["StatusCode"] == "Complete"
    assert results["queued"]["Values"] == [2.0] and len(results["queued"]["Timestamps"]) == 1


def test_publish_metrics_data_is_readable_through_cloudwatch(api: ApiServer) -> None:
    at = time.time() - 120
    api.client().publish_metrics(
        EnvironmentName="avail",
        MetricData=[
            {"MetricName": "HealthProbe", "Timestamp": at, "Value": 4.0, "Unit": "Count"},
            {
                "MetricName": "HealthProbe",
                "Timestamp": at,
                "StatisticValues": {"SampleCount": 2, "Sum": 6.0, "Minimum": 1.0, "Maximum": 5.0},
                "Unit": "Count",
            },
        ],
    )
    out = api.client("cloudwatch").get_metric_statistics(
        Namespace="AmazonMWAA",
        MetricName="HealthProbe",
        Dimensions=[{"Name": "Environment", "Value": "avail"}],
        StartTime=at - 60,
        EndTime=at + 60,
        Period=120,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"],
    )
    [point] = out["Datapoints"]
    assert (point["SampleCount"], point["Sum"], point["Minimum"], point["Maximum"]) == (3, 10, 1, 5)
    assert point["Average"] == pytest.approx(10 / 3)


def test_bad_input_gets_cloudwatch_s_modeled_errors(api: ApiServer) -> None:
    cloudwatch = api.client("cloudwatch")
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException, match="multiple of 60"):
        cloudwatch.get_metric_statistics(
            Namespace="AmazonMWAA",
            MetricName="SchedulerHeartbeat",
            StartTime=time.time() - 600,
            EndTime=time.time(),
            Period=61,
            Statistics=["Sum"],
        )
    with pytest.raises(cloudwatch.exceptions.InvalidParameterCombinationException):
        cloudwatch.get_metric_statistics(
            Namespace="AmazonMWAA",
            MetricName="X",
            StartTime=0,
            EndTime=time.time(),
            Period=60,
            Statistics=["Sum"],
        )  # decades of minutes: more than 1440 datapoints
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException, match="StartTime"):
        cloudwatch.get_metric_statistics(
            Namespace="AmazonMWAA", MetricName="X", StartTime=200, EndTime=100, Period=60, Statistics=["Sum"]
        )
    with pytest.raises(cloudwatch.exceptions.InvalidNextToken):
        cloudwatch.list_metrics(NextToken="not-a-token")
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException, match="metric math"):
        cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "m", "Expression": "SUM(METRICS())"}], StartTime=0, EndTime=60
        )


def test_iam_decides_with_cloudwatch_actions_and_the_trail_keeps_the_decision(api: ApiServer) -> None:
    reader = api.client("cloudwatch", user="metrics-reader")
    reader.list_metrics(Namespace="AWS/MWAA")
    with pytest.raises(ClientError) as denied:
        reader.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {"Namespace": "AWS/MWAA", "MetricName": "NumSchedulers"},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=0,
            EndTime=60,
        )
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as nobody:
        api.client("cloudwatch", user="nobody").list_metrics()
    assert nobody.value.response["Error"]["Code"] == "AccessDenied"
    request_id = nobody.value.response["ResponseMetadata"]["RequestId"]
    audit: AuditLog = api.services.audit
    audit.flush()
    [entry] = [e for _, e in audit.query(action="cloudwatch:ListMetrics") if e.request_id == request_id]
    assert entry.decision != "Allow" and entry.status == 403 and entry.resource == "*"


def signed_post(
    api: ApiServer, path: str, headers: dict[str, str], body: bytes, scope: str
) -> requests.Response:
    key_id, secret = api.keys["admin"]
    request = AWSRequest("POST", api.endpoint_url + path, data=body, headers=headers)
    SigV4Auth(Credentials(key_id, secret), scope, REGION).add_auth(request)
    return requests.post(request.url, data=body, headers=dict(request.headers), timeout=10)


def test_a_request_signed_for_another_service_is_refused(api: ApiServer) -> None:
    """CloudWatch's target with a SigV4 scope of ``logs``: the signature check refuses it."""
    headers = {"X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics", "Content-Type": JSON_TYPE}
    assert signed_post(api, "/", headers, b"{}", "monitoring").status_code == 200
    refused = signed_post(api, "/", headers, b"{}", "logs")
    assert refused.status_code == 403
    assert refused.json()["__type"].endswith("InvalidSignatureException")


def test_cbor_requests_are_answered_in_cbor(api: ApiServer) -> None:
    """The Smithy RPC v2 CBOR path, for SDKs that prefer it: a bad body is a modeled error."""
    headers = {
        "smithy-protocol": "rpc-v2-cbor",
        "Content-Type": "application/cbor",
        "Accept": "application/cbor",
    }
    path = SERVICE_PATH + "ListMetrics"
    ok = signed_post(api, path, headers, cbor.encode({"Namespace": "AWS/MWAA"}), "monitoring")
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/cbor"
    assert isinstance(cbor.decode(ok.content)["Metrics"], list)
    bad = signed_post(api, path, headers, b"\xa1\x61", "monitoring")  # a truncated map
    assert bad.status_code == 400 and bad.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    assert cbor.decode(bad.content)["__type"].endswith("#InvalidParameterValueException")
