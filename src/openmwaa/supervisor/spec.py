"""What the services layer tells the supervisor, and what the supervisor reports back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from openmwaa.runtime.airflow_config import DEFAULT_ENVIRONMENT_CLASS, CeleryOptions
from openmwaa.runtime.secrets import EnvironmentSecrets

EventKind = Literal[
    "progress", "available", "create_failed", "update_failed", "unavailable", "deleted", "delete_failed"
]


@dataclass(frozen=True)
class EnvironmentSpec:
    """Everything that decides what one environment runs."""

    key: str  # unique id, "<account>/<region>/<name>"
    name: str
    airflow_version: str
    home: Path  # the environment's private directory
    dags_dir: Path
    plugins_zip: Path | None
    requirements_file: Path | None
    startup_script: Path | None
    airflow_config: Mapping[str, str] = field(repr=False)  # values are sensitive in MWAA's model
    secrets: EnvironmentSecrets = field(repr=False)
    database_url: str | None = field(default=None, repr=False)  # None: a SQLite file in home
    environment_class: str = DEFAULT_ENVIRONMENT_CLASS  # sets the default task concurrency
    #: How many web server replicas run: at least the first, at most the second (autoscaled).
    web_servers: tuple[int, int] = (1, 1)
    #: Variables every process of the environment gets (the execution role's credentials
    #: endpoint and its token): set by openmwaa, so a startup script cannot change them.
    task_environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: MWAA's LoggingConfiguration as given (modules' Enabled and LogLevel).
    logging_configuration: Mapping[str, Any] = field(default_factory=dict)
    #: Distributed mode (CeleryExecutor on ``database_url``, a PostgreSQL one); None: LocalExecutor.
    celery: CeleryOptions | None = None
    #: Scheduler processes (Airflow's HA scheduling; more than one only in distributed mode).
    schedulers: int = 1
    #: Celery workers: (MinWorkers, MaxWorkers); MinWorkers of them start with the environment.
    workers: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class EnvironmentEvent:
    key: str
    kind: EventKind
    #: Progress text, or an error message a user can act on.
    message: str = ""
    #: e.g. INCORRECT_CONFIGURATION, REQUIREMENTS_INSTALL_FAILED, STARTUP_TIMEOUT, COMPONENT_CRASHED.
    error_code: str | None = None
