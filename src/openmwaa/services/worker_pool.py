"""JoinWorkerPool: what a worker on another machine needs to serve an environment's Celery queue.

The grant is computed from the environment's record exactly as its own workers' configuration
is (``runtime.airflow_config.airflow_environment``), then stripped of what only makes sense on
openmwaa's machine (paths, ports, loopback hosts): the worker puts its own in their place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Protocol

from openmwaa.errors import ValidationError
from openmwaa.runtime.airflow_config import Ports, airflow_environment
from openmwaa.runtime.versions import major
from openmwaa.services.environments import SERVING_STATUSES
from openmwaa.store.environments import EnvironmentRecord
from openmwaa.supervisor import EnvironmentSpec
from openmwaa.wire.worker_pool import SourceObject, WorkerPoolGrant, WorkerSources

#: The execution API of an environment, forwarded by openmwaa: this prefix, then its name.
EXECUTION_API_PREFIX: Final = "/_openmwaa/execution/"
#: Variables that name a path, port or host of openmwaa's machine; the worker sets its own.
MACHINE_VARIABLES: Final = frozenset(
    {
        "AIRFLOW_HOME",
        "PYTHONPATH",
        "OPENMWAA_TOKEN_SECRET",  # openmwaa's own tokens: checked by web servers only
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
        "AIRFLOW__LOGGING__DAG_PROCESSOR_CHILD_PROCESS_LOG_DIRECTORY",
        "AIRFLOW__SCHEDULER__CHILD_PROCESS_LOG_DIRECTORY",
        "AIRFLOW__API__HOST",
        "AIRFLOW__API__PORT",
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST",
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT",
        "AIRFLOW__WEBSERVER__BASE_URL",
        "AIRFLOW__WEBSERVER__CONFIG_FILE",
    }
)
#: Ports written into the variables computed here; every one of them is dropped again.
_UNUSED_PORTS: Final = Ports(api=8080, worker_log=8793, trigger_log=8794)


class Environments(Protocol):
    def get(self, name: str) -> EnvironmentRecord: ...

    def spec(self, record: EnvironmentRecord) -> EnvironmentSpec: ...


class CeleryPools(Protocol):
    """The environment's Celery queue (None: the environment does not run Celery)."""

    def queue(self, record: EnvironmentRecord) -> str | None: ...


class NoCeleryPools:
    """No environment runs Celery: every JoinWorkerPool is refused as not distributed."""

    def queue(self, record: EnvironmentRecord) -> str | None:
        return None


class WorkerPoolService:
    def __init__(
        self,
        environments: Environments,
        pools: CeleryPools,
        *,
        worker_variables: Callable[[EnvironmentSpec, int], Mapping[str, str]] | None = None,
    ) -> None:
        self._environments = environments
        self._pools = pools
        self._variables = worker_variables or environment_variables

    def join(self, name: str) -> WorkerPoolGrant:
        """The grant for environment ``name``; ResourceNotFound or ValidationError when there is none."""
        record = self._environments.get(name)
        if record.status not in SERVING_STATUSES:
            raise ValidationError(
                f"Environment {name} is {record.status}; a worker can join it once it is AVAILABLE."
            )
        queue = self._pools.queue(record)
        if queue is None:
            raise ValidationError(
                f"Environment {name} does not run the CeleryExecutor; only a distributed-mode "
                "environment has a worker pool to join."
            )
        spec = self._environments.spec(record)
        version = str(record.config["AirflowVersion"])
        airflow_major = major(version)
        variables = {
            k: v for k, v in self._variables(spec, airflow_major).items() if k not in MACHINE_VARIABLES
        }
        variables["AIRFLOW_ENV_NAME"] = record.name
        return WorkerPoolGrant(
            name=record.name,
            arn=record.arn,
            airflow_version=version,
            queue=queue,
            sources=worker_sources(record.config),
            execution_api_path=f"{EXECUTION_API_PREFIX}{record.name}/" if airflow_major >= 3 else None,
            airflow_variables=variables,
        )


def environment_variables(spec: EnvironmentSpec, airflow_major: int) -> dict[str, str]:
    """The environment's Airflow variables, as its own components get them (before machine paths go)."""
    return airflow_environment(
        major=airflow_major,
        home=spec.home,
        dags_dir=spec.dags_dir,
        plugins_dir=spec.home / "plugins",
        database_url=spec.database_url,
        secrets=spec.secrets,
        ports=_UNUSED_PORTS,
        options=spec.airflow_config,
        environment_class=spec.environment_class,
        celery=spec.celery,
    )


def worker_sources(config: Mapping[str, object]) -> WorkerSources:
    """Where the worker fetches the DAGs, plugins, requirements and startup script (S3 keys)."""
    bucket = str(config["SourceBucketArn"]).removeprefix("arn:aws:s3:::")

    def pinned(member: str) -> SourceObject | None:
        key = config.get(member)
        if not key:
            return None
        version = config.get(member.replace("S3Path", "S3ObjectVersion"))
        return SourceObject(str(key).lstrip("/"), str(version) if version else None)

    prefix = str(config["DagS3Path"]).strip("/")
    return WorkerSources(
        bucket=bucket,
        dags_prefix=prefix + "/" if prefix else "",
        plugins=pinned("PluginsS3Path"),
        requirements=pinned("RequirementsS3Path"),
        startup_script=pinned("StartupScriptS3Path"),
    )
