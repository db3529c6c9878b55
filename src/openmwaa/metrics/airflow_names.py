"""Airflow's StatsD metric names -> MWAA's CloudWatch metrics in the ``AmazonMWAA`` namespace.

From MWAA's user guide, "Apache Airflow v2 and v3 environment metrics in CloudWatch": each
Airflow metric becomes a CamelCase metric with dimensions taken from the parts of its name
(``DAG``, ``Task``, ``Operator``, ``Pool``, ``Job``, ``DAG Filename``, ``State``) or a fixed
``Function`` (``Scheduler``, ``Executor``, ``DAG Processing``, ``Triggerer``); every series also
carries ``Environment``. Metrics not in the table are not published (MWAA publishes a fixed
list too). Units follow the StatsD type: counters and gauges ``Count``, timers ``Milliseconds``.

Airflow 3 sends most metrics twice: under a modern name that names no DAG, task or pool (those
go in tags), and under its Airflow 2 ("legacy") name, which does (``[metrics]
export_legacy_names``, on by default). The legacy names are what is mapped here, for both
majors; the modern ones find no rule, so nothing is counted twice.

The task-outcome counters (``ti_failures``, ``ti_successes``) are environment-wide totals with
``DAG=All`` and ``Task=All``, as dashboards and alarms written for MWAA query them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

NAMESPACE: Final = "AmazonMWAA"

_NAME = r"([^.]+)"  # one dotted part: a DAG id, task id, pool or file name

#: (pattern on the Airflow name, MWAA metric name, dimension names for the groups, fixed dimensions)
_RULES: Final[tuple[tuple[str, str, tuple[str, ...], Mapping[str, str]], ...]] = (
    # Scheduler
    ("scheduler_heartbeat", "SchedulerHeartbeat", (), {"Function": "Scheduler"}),
    ("zombies_killed", "ZombiesKilled", (), {"Function": "Scheduler"}),
    ("scheduler\\.tasks\\.killed_externally", "TasksKilledExternally", (), {"Function": "Scheduler"}),
    ("scheduler\\.orphaned_tasks\\.cleared", "OrphanedTasksCleared", (), {"Function": "Scheduler"}),
    ("scheduler\\.orphaned_tasks\\.adopted", "OrphanedTasksAdopted", (), {"Function": "Scheduler"}),
    ("scheduler\\.critical_section_busy", "CriticalSectionBusy", (), {"Function": "Scheduler"}),
    ("scheduler\\.critical_section_duration", "CriticalSectionDuration", (), {"Function": "Scheduler"}),
    ("scheduler\\.scheduler_loop_duration", "SchedulerLoopDuration", (), {"Function": "Scheduler"}),
    ("scheduler\\.tasks\\.starving", "TasksStarving", (), {"Function": "Scheduler"}),
    ("scheduler\\.tasks\\.executable", "TasksExecutable", (), {"Function": "Scheduler"}),
    ("scheduler\\.tasks\\.running", "TasksRunning", (), {"Function": "Scheduler"}),
    ("scheduler\\.dagruns\\.running", "DagRunsRunning", (), {"Function": "Scheduler"}),
    # Executor (newer Airflows also send a copy suffixed with the executor's class name: not
    # counted, or every value would be counted twice)
    ("executor\\.open_slots", "OpenSlots", (), {"Function": "Executor"}),
    ("executor\\.queued_tasks", "QueuedTasks", (), {"Function": "Executor"}),
    ("executor\\.running_tasks", "RunningTasks", (), {"Function": "Executor"}),
    # Task outcomes are environment-wide totals, published with DAG and Task "All".
    ("ti_failures", "TaskInstanceFailures", (), {"DAG": "All", "Task": "All"}),
    ("ti_successes", "TaskInstanceSuccesses", (), {"DAG": "All", "Task": "All"}),
    # DAG processing
    ("dagbag_size", "DagBagSize", (), {"Function": "DAG Processing"}),
    ("dag_processing\\.processes", "Processes", (), {"Function": "DAG Processing"}),
    ("dag_processing\\.import_errors", "ImportErrors", (), {"Function": "DAG Processing"}),
    ("dag_processing\\.total_parse_time", "TotalParseTime", (), {"Function": "DAG Processing"}),
    ("dag_processing\\.processor_timeouts", "ProcessorTimeouts", (), {"Function": "DAG Processing"}),
    ("dag_processing\\.file_path_queue_size", "FilePathQueueSize", (), {"Function": "DAG Processing"}),
    ("dag_file_refresh_error", "DAGFileRefreshError", (), {"Function": "DAG Processing"}),
    ("collect_db_dags", "CollectDBDags", (), {"Function": "DAG Processing"}),
    (f"dag_processing\\.last_duration\\.{_NAME}", "LastDuration", ("DAG Filename",), {}),
    (f"dag_processing\\.last_run\\.seconds_ago\\.{_NAME}", "SecondsAgo", ("DAG Filename",), {}),
    # Triggerer
    ("triggers\\.running", "TriggersRunning", (), {"Function": "Triggerer"}),
    ("triggers\\.succeeded", "TriggersSucceeded", (), {"Function": "Triggerer"}),
    ("triggers\\.failed", "TriggersFailed", (), {"Function": "Triggerer"}),
    # Pools
    (f"pool\\.open_slots\\.{_NAME}", "OpenSlots", ("Pool",), {}),
    (f"pool\\.queued_slots\\.{_NAME}", "QueuedSlots", ("Pool",), {}),
    (f"pool\\.running_slots\\.{_NAME}", "RunningSlots", ("Pool",), {}),
    (f"pool\\.deferred_slots\\.{_NAME}", "DeferredSlots", ("Pool",), {}),
    (f"pool\\.scheduled_slots\\.{_NAME}", "ScheduledSlots", ("Pool",), {}),
    (f"pool\\.starving_tasks\\.{_NAME}", "StarvingTasks", ("Pool",), {}),
    # DAGs and tasks
    (f"dagrun\\.duration\\.success\\.{_NAME}", "DAGDurationSuccess", ("DAG",), {}),
    (f"dagrun\\.duration\\.failed\\.{_NAME}", "DAGDurationFailed", ("DAG",), {}),
    (f"dagrun\\.schedule_delay\\.{_NAME}", "DAGScheduleDelay", ("DAG",), {}),
    (f"dagrun\\.dependency-check\\.{_NAME}", "DAGDependencyCheck", ("DAG",), {}),
    (f"dagrun\\.{_NAME}\\.first_task_scheduling_delay", "FirstTaskSchedulingDelay", ("DAG",), {}),
    (f"dag\\.{_NAME}\\.{_NAME}\\.duration", "TaskInstanceDuration", ("DAG", "Task"), {}),
    (f"ti\\.start\\.{_NAME}\\.{_NAME}", "TaskInstanceStarted", ("DAG", "Task"), {}),
    (f"ti\\.finish\\.{_NAME}\\.{_NAME}\\.{_NAME}", "TaskInstanceFinished", ("DAG", "Task", "State"), {}),
    (f"task_removed_from_dag\\.{_NAME}", "TaskRemovedFromDAG", ("DAG",), {}),
    (f"task_restored_to_dag\\.{_NAME}", "TaskRestoredToDAG", ("DAG",), {}),
    ("task_instance_created[_-](.+)", "TaskInstanceCreatedUsingOperator", ("Operator",), {}),
    ("operator_failures_(.+)", "OperatorFailures", ("Operator",), {}),
    ("operator_successes_(.+)", "OperatorSuccesses", ("Operator",), {}),
    ("(\\w+Job)_start", "JobStart", ("Job",), {}),
    ("(\\w+Job)_end", "JobEnd", ("Job",), {}),
    ("(\\w+Job)_heartbeat_failure", "JobHeartbeatFailure", ("Job",), {}),
)
_COMPILED: Final = tuple((re.compile(p), name, dims, fixed) for p, name, dims, fixed in _RULES)
#: Dimension values CloudWatch accepts (1-1024 characters); longer parts are not published.
_MAX_VALUE: Final = 1024


@dataclass(frozen=True)
class MwaaMetric:
    name: str
    dimensions: Mapping[str, str]


def mwaa_metric(airflow_name: str) -> MwaaMetric | None:
    """MWAA's metric for an Airflow StatsD name (prefix removed, tags aside), or None if MWAA
    has none."""
    for pattern, name, dims, fixed in _COMPILED:
        match = pattern.fullmatch(airflow_name)
        if match is None:
            continue
        values = match.groups()
        if any(not v or len(v) > _MAX_VALUE for v in values):
            return None
        return MwaaMetric(name, {**fixed, **dict(zip(dims, values, strict=True))})
    return None
