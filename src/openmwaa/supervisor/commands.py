"""What an environment's runner is asked to do, and how a lifecycle step reports that it stopped short."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openmwaa.supervisor.spec import EnvironmentSpec


@dataclass(frozen=True)
class Create:
    spec: EnvironmentSpec


@dataclass(frozen=True)
class Update:
    spec: EnvironmentSpec
    previous: EnvironmentSpec
    #: UpdateEnvironment's WorkerReplacementStrategy: FORCED stops the workers at once,
    #: GRACEFUL lets their running tasks finish (within a bound) first.
    worker_replacement: str = "FORCED"


@dataclass(frozen=True)
class Resume:
    spec: EnvironmentSpec


@dataclass(frozen=True)
class Delete:
    home: Path
    database_url: str | None


@dataclass(frozen=True)
class Shutdown:
    pass


Command = Create | Update | Resume | Delete | Shutdown


class StartFailure(Exception):
    """Airflow did not become healthy: a component exited, or the start-up deadline passed."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class Interrupted(Exception):
    """A delete or shutdown arrived while a long step was under way."""
