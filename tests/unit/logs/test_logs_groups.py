"""MWAA's log modules: group names, ARNs and the Airflow levels they set per process."""

from __future__ import annotations

import pytest

from openmwaa.logs.groups import LogGroupName, component_log_levels, describe_logging
from openmwaa.supervisor.components import ComponentSpec
from openmwaa.supervisor.launcher import component_env
from openmwaa.supervisor.prepare import apply_log_levels


def module(enabled: bool, level: str = "INFO") -> dict[str, object]:
    return {"Enabled": enabled, "LogLevel": level}


def test_enabled_modules_get_mwaa_group_arns_and_disabled_ones_none() -> None:
    described = describe_logging(
        {
            "TaskLogs": module(True, "DEBUG"),
            "WebserverLogs": module(False, "ERROR"),
            "DagProcessingLogs": module(True),
        },
        environment="my-env",
        region="eu-west-1",
        account_id="123456789012",
    )
    assert described["TaskLogs"] == {
        "Enabled": True,
        "LogLevel": "DEBUG",
        "CloudWatchLogGroupArn": "arn:aws:logs:eu-west-1:123456789012:log-group:airflow-my-env-Task",
    }
    assert described["DagProcessingLogs"]["CloudWatchLogGroupArn"].endswith(
        ":log-group:airflow-my-env-DAGProcessing"
    )
    assert described["WebserverLogs"] == {"Enabled": False, "LogLevel": "ERROR"}
    assert described["SchedulerLogs"] == {"Enabled": False, "LogLevel": "INFO"}
    assert set(described) == {"DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs"}


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("airflow-my-env-Task", LogGroupName("my-env", "Task")),
        ("airflow-a-b-c-WebServer", LogGroupName("a-b-c", "WebServer")),
        ("airflow-x-DAGProcessing", LogGroupName("x", "DAGProcessing")),
        ("airflow-my-env-task", None),
        ("airflow--Task", None),
        ("airflow-Task", None),
        ("other-env-Task", None),
    ],
)
def test_group_names_parse_strictly(name: str, parsed: LogGroupName | None) -> None:
    assert LogGroupName.parse(name) == parsed
    if parsed is not None:
        assert str(parsed) == name


def test_scheduler_side_takes_the_most_verbose_of_its_modules_and_web_its_own() -> None:
    config = {
        "SchedulerLogs": module(True, "WARNING"),
        "TaskLogs": module(True, "DEBUG"),
        "WorkerLogs": module(False, "CRITICAL"),
        "WebserverLogs": module(True, "ERROR"),
        "DagProcessingLogs": module(True, "CRITICAL"),
    }
    assert component_log_levels(config, major=3) == {
        "scheduler": "DEBUG",
        "webserver": "ERROR",
        "dag-processor": "CRITICAL",
    }
    # Airflow 2 parses DAGs in the scheduler: no separate process, its level counts there.
    only_dags = {"DagProcessingLogs": module(True, "DEBUG"), "SchedulerLogs": module(True, "ERROR")}
    assert component_log_levels(only_dags, major=2) == {"scheduler": "DEBUG"}
    assert component_log_levels(only_dags, major=3) == {"scheduler": "ERROR", "dag-processor": "DEBUG"}
    assert component_log_levels({}, major=3) == {}


def test_levels_reach_the_process_environments() -> None:
    env = {"AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"}  # e.g. the user's AirflowConfigurationOptions
    web_env: dict[str, str] = {}
    apply_log_levels(env, web_env, {"scheduler": "WARNING", "webserver": "DEBUG", "dag-processor": "ERROR"})
    assert env["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "WARNING"
    assert web_env["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "DEBUG"
    processor = ComponentSpec("dag-processor", ("airflow", "dag-processor"))
    scheduler = ComponentSpec("scheduler", ("airflow", "scheduler"))
    assert component_env(processor, env)["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "ERROR"
    assert component_env(scheduler, env)["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "WARNING"
