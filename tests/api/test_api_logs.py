"""CloudWatch Logs on openmwaa's endpoint, with boto3's ``logs`` client and the AWS CLI.

The environment here is a record (no Airflow): its log files are written by the test in the
layout Airflow and the supervisor use, so every answer can be checked line by line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from tests.api.conftest import ACCOUNT, ENV_ARN, REGION, ApiServer

ENV = "logs-env"
TASK_FILE = "dag_id=etl/run_id=manual__2026-01-01T00:00:00+00:00/task_id=load/attempt=1.log"
TASK_STREAM = "dag_id=etl/run_id=manual__2026-01-01T00_00_00+00_00/task_id=load/attempt=1.log"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms
LOGGING = {
    "TaskLogs": {"Enabled": True, "LogLevel": "INFO"},
    "SchedulerLogs": {"Enabled": True, "LogLevel": "WARNING"},
    "WebserverLogs": {"Enabled": False, "LogLevel": "INFO"},
}


def stamp(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


@pytest.fixture(scope="module")
def logs_env(api: ApiServer) -> Path:
    record = EnvironmentRecord(
        key=EnvironmentKey(ACCOUNT, REGION, ENV),
        arn=ENV_ARN + ENV,
        status="AVAILABLE",
        created_at=time.time(),
        config={"AirflowVersion": "3.3.1", "LoggingConfiguration": LOGGING},
        previous_config=None,
        last_update=None,
        tags={},
        secrets={},
    )
    api.services.repository.insert(record)
    logs = api.services.environments.home(record) / "logs"
    task = logs / "airflow" / TASK_FILE
    task.parent.mkdir(parents=True)
    lines = [
        json.dumps({"timestamp": stamp(T0 + i * 1000), "level": "info", "event": f"row {i} loaded"})
        for i in range(250)
    ]
    lines[100] = json.dumps(
        {"timestamp": stamp(T0 + 100_000), "level": "error", "event": "disk quota exceeded"}
    )
    task.write_text("\n".join(lines) + "\n" + '{"partial": "still being writ')
    (logs / "scheduler.log").write_text(
        f"[{stamp(T0)}] INFO - scheduler started\nTraceback without a time\n[{stamp(T0 + 5)}] ERROR - boom\n"
    )
    (logs / "api-server.log").write_text(f"[{stamp(T0)}] INFO - web started\n")
    (logs / "airflow" / "dag_id=etl" / "notes.txt").write_text("not a log\n")
    os.symlink(logs / "scheduler.log", logs / "airflow" / "dag_id=etl" / "link.log")
    return logs


def test_get_environment_returns_mwaa_log_group_arns(api: ApiServer, logs_env: Path) -> None:
    logging = api.client().get_environment(Name=ENV)["Environment"]["LoggingConfiguration"]
    assert (
        logging["TaskLogs"]["CloudWatchLogGroupArn"]
        == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:airflow-{ENV}-Task"
    )
    assert logging["SchedulerLogs"] == {
        "Enabled": True,
        "LogLevel": "WARNING",
        "CloudWatchLogGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:airflow-{ENV}-Scheduler",
    }
    assert "CloudWatchLogGroupArn" not in logging["WebserverLogs"]


def test_describe_log_groups_lists_the_enabled_modules(api: ApiServer, logs_env: Path) -> None:
    groups = api.client("logs").describe_log_groups(logGroupNamePrefix=f"airflow-{ENV}")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"airflow-{ENV}-Scheduler", f"airflow-{ENV}-Task"]
    assert groups[1]["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:airflow-{ENV}-Task:*"
    paged = (
        api.client("logs")
        .get_paginator("describe_log_groups")
        .paginate(logGroupNamePrefix=f"airflow-{ENV}", PaginationConfig={"PageSize": 1})
    )
    assert [g["logGroupName"] for page in paged for g in page["logGroups"]] == [
        g["logGroupName"] for g in groups
    ]


def test_describe_log_streams_names_task_streams_as_mwaa_does(api: ApiServer, logs_env: Path) -> None:
    logs = api.client("logs")
    streams = logs.describe_log_streams(logGroupName=f"airflow-{ENV}-Task")["logStreams"]
    # Only regular *.log files: the symbolic link and the text file are not streams.
    assert [s["logStreamName"] for s in streams] == [TASK_STREAM]
    scheduler = logs.describe_log_streams(logGroupName=f"airflow-{ENV}-Scheduler")["logStreams"]
    assert [s["logStreamName"] for s in scheduler] == ["scheduler.log"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName=f"airflow-{ENV}-WebServer")  # disabled
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="airflow-nope-Task")


def test_get_log_events_pages_forward_and_backward(api: ApiServer, logs_env: Path) -> None:
    logs = api.client("logs")
    group = f"airflow-{ENV}-Task"
    head = logs.get_log_events(logGroupName=group, logStreamName=TASK_STREAM, startFromHead=True, limit=100)
    assert [json.loads(e["message"])["event"] for e in head["events"]][:2] == ["row 0 loaded", "row 1 loaded"]
    assert head["events"][0]["timestamp"] == T0
    second = logs.get_log_events(
        logGroupName=group, logStreamName=TASK_STREAM, nextToken=head["nextForwardToken"], limit=100
    )
    assert json.loads(second["events"][0]["message"])["event"] == "disk quota exceeded"
    # Backward from the second page comes back to the first.
    back = logs.get_log_events(
        logGroupName=group, logStreamName=TASK_STREAM, nextToken=second["nextBackwardToken"], limit=100
    )
    assert back["events"] == head["events"]
    # No token: the newest events; the line still being written is not one yet.
    tail = logs.get_log_events(logGroupName=group, logStreamName=TASK_STREAM, limit=3)
    assert [json.loads(e["message"])["event"] for e in tail["events"]] == [
        f"row {i} loaded" for i in (247, 248, 249)
    ]
    end = logs.get_log_events(
        logGroupName=group, logStreamName=TASK_STREAM, nextToken=tail["nextForwardToken"]
    )
    assert end["events"] == [] and end["nextForwardToken"] == tail["nextForwardToken"]
    # Following forward tokens until one repeats (how SDKs page GetLogEvents) reads every line once.
    events, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=group, logStreamName=TASK_STREAM, limit=70, **kwargs)
        events += page["events"]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert len(events) == 250


def test_lines_without_a_time_take_the_previous_lines(api: ApiServer, logs_env: Path) -> None:
    out = api.client("logs").get_log_events(
        logGroupName=f"airflow-{ENV}-Scheduler", logStreamName="scheduler.log", startFromHead=True
    )
    assert [(e["timestamp"], e["message"]) for e in out["events"]] == [
        (T0, f"[{stamp(T0)}] INFO - scheduler started"),
        (T0, "Traceback without a time"),
        (T0 + 5, f"[{stamp(T0 + 5)}] ERROR - boom"),
    ]


@pytest.mark.parametrize(
    "token",
    [
        "f/00000000000000000000000000000000000000000000000000000000",
        "../../etc/passwd",
        "eyJnIjoiYSJ9.AAAA",
        "a.b.c",
    ],
)
def test_forged_tokens_are_refused(api: ApiServer, logs_env: Path, token: str) -> None:
    logs = api.client("logs")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.get_log_events(logGroupName=f"airflow-{ENV}-Task", logStreamName=TASK_STREAM, nextToken=token)


def test_a_token_of_another_stream_is_refused(api: ApiServer, logs_env: Path) -> None:
    logs = api.client("logs")
    other = logs.get_log_events(logGroupName=f"airflow-{ENV}-Scheduler", logStreamName="scheduler.log")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.get_log_events(
            logGroupName=f"airflow-{ENV}-Task", logStreamName=TASK_STREAM, nextToken=other["nextForwardToken"]
        )


def test_filter_log_events_terms_phrases_and_time(api: ApiServer, logs_env: Path) -> None:
    logs = api.client("logs")
    group = f"airflow-{ENV}-Task"
    found = logs.filter_log_events(logGroupName=group, filterPattern='"quota exceeded"')["events"]
    assert [(e["logStreamName"], json.loads(e["message"])["event"]) for e in found] == [
        (TASK_STREAM, "disk quota exceeded")
    ]
    assert logs.filter_log_events(logGroupName=group, filterPattern='"exceeded quota"')["events"] == []
    terms = logs.filter_log_events(logGroupName=group, filterPattern="row 24", startTime=T0 + 240_000)[
        "events"
    ]
    assert [json.loads(e["message"])["event"] for e in terms] == [f"row {i} loaded" for i in range(240, 250)]
    everything = [
        e
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 40}
        )
        for e in page["events"]
    ]
    assert len(everything) == 250 and len({e["eventId"] for e in everything}) == 250
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=group, filterPattern='{ $.level = "error" }')


def test_logs_actions_are_authorized_by_iam(api: ApiServer, logs_env: Path) -> None:
    editor = api.editor()
    editor.add_user("task-log-reader")
    key = editor.create_access_key("task-log-reader")
    editor.put_user_policy(
        "task-log-reader",
        "logs",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:DescribeLogGroups", "logs:FilterLogEvents"],
                    "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:airflow-{ENV}-Task:*",
                }
            ],
        },
    )
    api.wait_for_user("task-log-reader")
    logs = api.client(
        "logs", aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key
    )
    groups = logs.describe_log_groups(logGroupNamePrefix=f"airflow-{ENV}")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"airflow-{ENV}-Task"]
    assert logs.filter_log_events(logGroupName=f"airflow-{ENV}-Task", filterPattern="quota")["events"]
    with pytest.raises(ClientError) as denied:
        logs.filter_log_events(logGroupName=f"airflow-{ENV}-Scheduler")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as denied:
        logs.get_log_events(logGroupName=f"airflow-{ENV}-Task", logStreamName=TASK_STREAM)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    unsigned = api.client("logs", user=None)
    with pytest.raises(ClientError):
        unsigned.describe_log_groups()
    # Signed for another service: SigV4 insists on the ``logs`` scope.
    import botocore.session

    session = botocore.session.get_session()
    client = session.create_client(
        "logs",
        endpoint_url=api.endpoint_url,
        region_name=REGION,
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
    )
    client._request_signer._signing_name = "airflow"  # a signature scoped to MWAA, not to logs
    with pytest.raises(ClientError) as wrong:
        client.describe_log_groups()
    assert wrong.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_the_aws_cli_reads_the_logs(api: ApiServer, logs_env: Path, tmp_path: Path) -> None:
    key_id, secret = api.keys["admin"]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    aws = [
        str(Path(sys.executable).parent / "aws"),
        "--endpoint-url",
        api.endpoint_url,
        "--output",
        "json",
        "logs",
    ]

    def run(*args: str) -> Any:
        done = subprocess.run([*aws, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    groups = run("describe-log-groups", "--log-group-name-prefix", f"airflow-{ENV}")
    assert f"airflow-{ENV}-Task" in [g["logGroupName"] for g in groups["logGroups"]]
    found = run("filter-log-events", "--log-group-name", f"airflow-{ENV}-Task", "--filter-pattern", "quota")
    assert [e["logStreamName"] for e in found["events"]] == [TASK_STREAM]
    events = run(
        "get-log-events",
        "--log-group-name",
        f"airflow-{ENV}-Task",
        "--log-stream-name",
        TASK_STREAM,
        "--limit",
        "2",
    )
    assert len(events["events"]) == 2
