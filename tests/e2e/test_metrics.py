"""Metrics against real Airflow 3 and 2 on the shared environments: the AWS CLI, unchanged, reads
the scheduler's heartbeat series from Airflow's StatsD; a DAG run is counted with its DAG; boto3
reads the container metrics; Prometheus' own text parser reads ``GET /metrics``."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import METRICS_TOKEN, OpenMwaaServer, aws_cli_json, trigger_and_wait

pytestmark = pytest.mark.e2e


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def heartbeats(server: OpenMwaaServer, env_name: str) -> dict[str, Any]:
    now = time.time()
    out = aws_cli_json(
        server,
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "AmazonMWAA",
        "--metric-name",
        "SchedulerHeartbeat",
        "--dimensions",
        "Name=Function,Value=Scheduler",
        f"Name=Environment,Value={env_name}",
        "--start-time",
        iso(now - 1800),
        "--end-time",
        iso(now + 60),
        "--period",
        "60",
        "--statistics",
        "Sum",
        "SampleCount",
    )
    return out


def test_aws_cloudwatch_get_metric_statistics_returns_a_scheduler_heartbeat_series(
    server: OpenMwaaServer, shared_env: tuple[str, int]
) -> None:
    env_name, _major = shared_env
    deadline = time.monotonic() + 120
    out = heartbeats(server, env_name)
    while len(out["Datapoints"]) < 2 and time.monotonic() < deadline:  # a series: two minutes at least
        time.sleep(5)
        out = heartbeats(server, env_name)
    assert out["Label"] == "SchedulerHeartbeat"
    points = out["Datapoints"]
    assert len(points) >= 2, (out, server.log_tail())
    assert all(p["Sum"] >= 1 and p["Unit"] == "Count" for p in points)
    # The CLI prints timestamps as it parsed them: epoch seconds (v1) or ISO 8601.
    stamps = [
        datetime.fromtimestamp(p["Timestamp"], timezone.utc)
        if isinstance(p["Timestamp"], (int, float))
        else datetime.fromisoformat(p["Timestamp"])
        for p in points
    ]
    assert len(set(stamps)) == len(stamps) and all(s.second == 0 for s in stamps)


def test_a_dag_run_is_counted_with_its_dag_and_in_the_environment_s_task_totals(
    server: OpenMwaaServer, shared_env: tuple[str, int]
) -> None:
    env_name, major = shared_env
    started = time.time() - 60
    run = trigger_and_wait(server, env_name, major, "hello_openmwaa")
    if run["state"] != "success":  # the run's own task logs say why
        lines = server.client("logs").filter_log_events(
            logGroupName=f"airflow-{env_name}-Task",
            logStreamNamePrefix=f"dag_id=hello_openmwaa/run_id={run['dag_run_id']}/",
        )["events"]
        raise AssertionError("\n".join(f"{e['logStreamName']}: {e['message']}" for e in lines[-40:]))
    cloudwatch = server.client("cloudwatch")

    def total(name: str, dimensions: dict[str, str]) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AmazonMWAA",
            MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in {**dimensions, "Environment": env_name}.items()],
            StartTime=started,
            EndTime=time.time() + 60,
            Period=60,
            Statistics=["SampleCount"],
        )["Datapoints"]
        return float(sum(p["SampleCount"] for p in points))

    deadline = time.monotonic() + 60
    while total("DAGDurationSuccess", {"DAG": "hello_openmwaa"}) < 1:
        assert time.monotonic() < deadline, "no DAGDurationSuccess for hello_openmwaa in 60 s"
        time.sleep(2)
    assert total("TaskInstanceSuccesses", {"DAG": "All", "Task": "All"}) >= 1


def test_container_metrics_are_in_aws_mwaa(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    env_name, _major = shared_env
    cloudwatch = server.client("cloudwatch")
    environment = [{"Name": "Environment", "Value": env_name}]

    def maximum(name: str, dimensions: list[dict[str, str]]) -> float | None:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/MWAA",
            MetricName=name,
            Dimensions=dimensions,
            StartTime=time.time() - 1800,
            EndTime=time.time() + 60,
            Period=1800,
            Statistics=["Maximum"],
        )["Datapoints"]
        return max((p["Maximum"] for p in points), default=None)

    deadline = time.monotonic() + 60
    while maximum("CPUUtilization", [{"Name": "Cluster", "Value": "Scheduler"}, *environment]) is None:
        assert time.monotonic() < deadline, "no CPUUtilization sample in 60 s"
        time.sleep(2)
    assert maximum("NumSchedulers", environment) == 1
    assert maximum("NumWebServers", environment) == 1  # the e2e server caps web servers at 1
    memory = maximum("MemoryUtilization", [{"Name": "Cluster", "Value": "WebServer"}, *environment])
    assert memory is not None and 0 < memory < 100
    listed = cloudwatch.list_metrics(Namespace="AWS/MWAA", Dimensions=environment)["Metrics"]
    assert {"CPUUtilization", "MemoryUtilization", "NumSchedulers", "NumWorkers"} <= {
        m["MetricName"] for m in listed
    }


def test_prometheus_text_parser_reads_metrics(server: OpenMwaaServer, af3_env: str, af2_env: str) -> None:
    response = httpx.get(
        f"{server.endpoint_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30
    )
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    status = {
        s.labels["environment"]: s.labels["status"]
        for s in families["openmwaa_environment_status"].samples
        if s.value == 1
    }
    assert status[af3_env] == status[af2_env] == "AVAILABLE"
    serving = {s.labels["environment"]: s.value for s in families["openmwaa_environment_serving"].samples}
    assert serving[af3_env] == serving[af2_env] == 1
    assert any(s.value > 0 for s in families["openmwaa_requests"].samples)
