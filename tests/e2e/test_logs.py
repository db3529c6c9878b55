"""CloudWatch Logs against real Airflow 3 and 2: a task's lines under MWAA's stream name, found with
boto3's ``logs`` client and the AWS CLI (v1: its ``filter-log-events``; v2's ``logs tail`` calls
the same FilterLogEvents, see the loop below, but the v2 CLI is not installable from PyPI)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import OpenMwaaServer, aws_cli_json, trigger_and_wait

pytestmark = pytest.mark.e2e


def follow(logs: Any, group: str, pattern: str, start_time: int, timeout: float) -> list[dict[str, Any]]:
    """What ``aws logs tail GROUP --follow --filter-pattern`` does: FilterLogEvents from startTime,
    page by page, then again from the newest timestamp seen, dropping events already shown."""
    seen: dict[int, set[str]] = {}
    shown: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_time, "filterPattern": pattern}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = logs.filter_log_events(interleaved=True, **kwargs)
        for event in response["events"]:
            if event["eventId"] not in seen.setdefault(event["timestamp"], set()):
                seen[event["timestamp"]].add(event["eventId"])
                shown.append(event)
        if "nextToken" in response:
            kwargs["nextToken"] = response["nextToken"]
            continue
        kwargs.pop("nextToken", None)
        if shown:
            kwargs["startTime"] = max(e["timestamp"] for e in shown)
            return shown
        time.sleep(1)
    return shown


def test_a_task_s_lines_are_found_under_mwaa_s_stream_name(
    server: OpenMwaaServer, shared_env: tuple[str, int]
) -> None:
    env_name, major = shared_env
    mwaa, logs = server.client(), server.client("logs")
    logging = mwaa.get_environment(Name=env_name)["Environment"]["LoggingConfiguration"]
    group = f"airflow-{env_name}-Task"
    assert logging["TaskLogs"]["CloudWatchLogGroupArn"].endswith(f":log-group:{group}")
    started = int(time.time() * 1000) - 1000
    run = trigger_and_wait(server, env_name, major, "hello_openmwaa")
    if run["state"] != "success":  # the run's own task logs say why, through the API under test
        lines = logs.filter_log_events(
            logGroupName=group, logStreamNamePrefix=f"dag_id=hello_openmwaa/run_id={run['dag_run_id']}/"
        )["events"]
        raise AssertionError("\n".join(f"{e['logStreamName']}: {e['message']}" for e in lines[-40:]))
    stream = f"dag_id=hello_openmwaa/run_id={run['dag_run_id']}/task_id=report/attempt=1.log"

    names = [
        g["logGroupName"]
        for g in logs.describe_log_groups(logGroupNamePrefix=f"airflow-{env_name}-")["logGroups"]
    ]
    assert group in names and f"airflow-{env_name}-Scheduler" in names
    found = follow(logs, group, '"hello, openmwaa"', started, timeout=60)
    assert stream in {e["logStreamName"] for e in found}, found
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert any("hello, openmwaa" in e["message"] for e in events)

    # The AWS CLI, unchanged, with only the endpoint variables a user exports.
    out = aws_cli_json(
        server,
        "logs",
        "filter-log-events",
        "--log-group-name",
        group,
        "--log-stream-names",
        stream,
        "--filter-pattern",
        "openmwaa",
    )
    assert any("hello, openmwaa" in e["message"] for e in out["events"])
