"""MWAA's log modules: their log group names and ARNs, and the Airflow log level each one sets.

MWAA publishes five modules to CloudWatch Logs, each in a group ``airflow-<Env>-<Suffix>``. Here
the groups are served from the environment's own files (see :mod:`openmwaa.logs.files`); a module
whose ``Enabled`` is false has no group, as on MWAA where nothing is published for it.

Log levels: one machine runs every component, and tasks run inside the scheduler's process tree
(LocalExecutor / SequentialExecutor), so the scheduler-side processes take the most verbose of the
enabled SchedulerLogs, WorkerLogs and TaskLogs levels (no module loses a line it asked for); the
web server takes WebserverLogs' level and, on Airflow 3, the DAG processor DagProcessingLogs'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: LoggingConfiguration member -> the suffix of its log group.
MODULE_SUFFIXES: Final[Mapping[str, str]] = {
    "DagProcessingLogs": "DAGProcessing",
    "SchedulerLogs": "Scheduler",
    "TaskLogs": "Task",
    "WebserverLogs": "WebServer",
    "WorkerLogs": "Worker",
}
#: MWAA's LoggingLevel enum, most verbose first.
LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LEVEL: Final = "INFO"
PREFIX: Final = "airflow-"

#: Variables the supervisor sets per component (``AIRFLOW__LOGGING__LOGGING_LEVEL`` is Airflow's).
LEVEL_VARIABLE: Final = "AIRFLOW__LOGGING__LOGGING_LEVEL"
#: The DAG processor's level, carried in the scheduler-side environment (its own process reads it).
DAG_PROCESSOR_LEVEL_VARIABLE: Final = "OPENMWAA_DAG_PROCESSING_LOG_LEVEL"


@dataclass(frozen=True)
class LogGroupName:
    """``airflow-<environment>-<suffix>``, split."""

    environment: str
    suffix: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.environment}-{self.suffix}"

    @classmethod
    def parse(cls, name: str) -> LogGroupName | None:
        """The environment and module of an MWAA group name; None for any other name."""
        if not name.startswith(PREFIX):
            return None
        environment, sep, suffix = name[len(PREFIX) :].rpartition("-")
        if not sep or not environment or suffix not in MODULE_SUFFIXES.values():
            return None
        return cls(environment, suffix)


def group_arn(region: str, account_id: str, group: str) -> str:
    return f"arn:aws:logs:{region}:{account_id}:log-group:{group}"


def enabled_modules(logging_configuration: Mapping[str, Any] | None) -> dict[str, str]:
    """The enabled modules' suffixes -> their level."""
    out: dict[str, str] = {}
    for module, suffix in MODULE_SUFFIXES.items():
        entry = (logging_configuration or {}).get(module) or {}
        if entry.get("Enabled") is True:
            out[suffix] = str(entry.get("LogLevel") or DEFAULT_LEVEL)
    return out


def describe_logging(
    logging_configuration: Mapping[str, Any] | None, *, environment: str, region: str, account_id: str
) -> dict[str, Any]:
    """GetEnvironment's ``LoggingConfiguration``: every module, with its group ARN when enabled."""
    given = logging_configuration or {}
    out: dict[str, Any] = {}
    for module, suffix in MODULE_SUFFIXES.items():
        entry = given.get(module) or {}
        enabled = entry.get("Enabled") is True
        described: dict[str, Any] = {
            "Enabled": enabled,
            "LogLevel": str(entry.get("LogLevel") or DEFAULT_LEVEL),
        }
        if enabled:
            name = str(LogGroupName(environment, suffix))
            described["CloudWatchLogGroupArn"] = group_arn(region, account_id, name)
        out[module] = described
    return out


def component_log_levels(logging_configuration: Mapping[str, Any] | None, *, major: int) -> dict[str, str]:
    """Airflow log levels per process kind (``scheduler``, ``webserver``, ``dag-processor``).

    A kind whose modules are all disabled is absent: it keeps Airflow's level (or the user's
    ``logging.logging_level``).
    """
    enabled = enabled_modules(logging_configuration)

    def most_verbose(*suffixes: str) -> str | None:
        levels = [enabled[s] for s in suffixes if s in enabled]
        return min(levels, key=LEVELS.index) if levels else None

    picked = {
        # Airflow 2 parses DAGs inside the scheduler: its DAG processing logs come from there too.
        "scheduler": most_verbose("Scheduler", "Worker", "Task", *(("DAGProcessing",) if major < 3 else ())),
        "webserver": most_verbose("WebServer"),
        "dag-processor": most_verbose("DAGProcessing") if major >= 3 else None,
    }
    return {kind: level for kind, level in picked.items() if level is not None}
