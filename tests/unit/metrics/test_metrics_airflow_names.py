"""Airflow's StatsD names -> MWAA's metric names and dimensions (a table)."""

from __future__ import annotations

import pytest

from openmwaa.metrics.airflow_names import mwaa_metric

CASES = [
    ("scheduler_heartbeat", "SchedulerHeartbeat", {"Function": "Scheduler"}),
    ("ti_failures", "TaskInstanceFailures", {"DAG": "All", "Task": "All"}),
    ("ti_successes", "TaskInstanceSuccesses", {"DAG": "All", "Task": "All"}),
    ("executor.open_slots", "OpenSlots", {"Function": "Executor"}),
    ("executor.queued_tasks", "QueuedTasks", {"Function": "Executor"}),
    ("executor.running_tasks", "RunningTasks", {"Function": "Executor"}),
    ("dag_processing.total_parse_time", "TotalParseTime", {"Function": "DAG Processing"}),
    ("dagbag_size", "DagBagSize", {"Function": "DAG Processing"}),
    ("dag_processing.import_errors", "ImportErrors", {"Function": "DAG Processing"}),
    ("dag_processing.last_duration.hello_openmwaa", "LastDuration", {"DAG Filename": "hello_openmwaa"}),
    ("pool.open_slots.default_pool", "OpenSlots", {"Pool": "default_pool"}),
    ("pool.queued_slots.default_pool", "QueuedSlots", {"Pool": "default_pool"}),
    ("pool.running_slots.etl", "RunningSlots", {"Pool": "etl"}),
    ("dagrun.duration.success.hello", "DAGDurationSuccess", {"DAG": "hello"}),
    ("dagrun.duration.failed.hello", "DAGDurationFailed", {"DAG": "hello"}),
    ("dagrun.hello.first_task_scheduling_delay", "FirstTaskSchedulingDelay", {"DAG": "hello"}),
    ("dag.hello.report.duration", "TaskInstanceDuration", {"DAG": "hello", "Task": "report"}),
    (
        "ti.finish.hello.report.success",
        "TaskInstanceFinished",
        {"DAG": "hello", "Task": "report", "State": "success"},
    ),
    ("operator_failures_BashOperator", "OperatorFailures", {"Operator": "BashOperator"}),
    (
        "task_instance_created_PythonOperator",
        "TaskInstanceCreatedUsingOperator",
        {"Operator": "PythonOperator"},
    ),
    ("SchedulerJob_start", "JobStart", {"Job": "SchedulerJob"}),
]


@pytest.mark.parametrize(("airflow", "name", "dimensions"), CASES)
def test_airflow_names_map_to_mwaa_s(airflow: str, name: str, dimensions: dict[str, str]) -> None:
    metric = mwaa_metric(airflow)
    assert metric is not None and (metric.name, dict(metric.dimensions)) == (name, dimensions)


@pytest.mark.parametrize(
    "airflow", ["", "scheduler_heartbeats", "custom.metric", "pool.open_slots.", "dag.a.b.c.duration"]
)
def test_names_mwaa_does_not_publish_are_none(airflow: str) -> None:
    assert mwaa_metric(airflow) is None


@pytest.mark.parametrize(
    "modern",
    ["dagrun.duration.success", "task.duration", "ti.finish", "pool.open_slots", "operator_failures"],
)
def test_airflow_3_s_modern_names_are_not_counted_beside_their_legacy_names(modern: str) -> None:
    """Airflow 3 sends both; the legacy one (with the DAG, task or pool in it) is the one counted."""
    assert mwaa_metric(modern) is None
