"""CreateEnvironment, GetEnvironment, UpdateEnvironment, DeleteEnvironment, ListEnvironments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from anyio.to_thread import run_sync

from openmwaa.logs.groups import describe_logging
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.steps import Operation
from openmwaa.services.celery_queue import queue_arn
from openmwaa.services.environments import EnvironmentService
from openmwaa.store.environments import EnvironmentRecord

#: Configuration members GetEnvironment reports as they were set.
_REPORTED = (
    "AirflowVersion",
    "ExecutionRoleArn",
    "SourceBucketArn",
    "DagS3Path",
    "PluginsS3Path",
    "PluginsS3ObjectVersion",
    "RequirementsS3Path",
    "RequirementsS3ObjectVersion",
    "StartupScriptS3Path",
    "StartupScriptS3ObjectVersion",
    "AirflowConfigurationOptions",
    "EnvironmentClass",
    "MaxWorkers",
    "MinWorkers",
    "Schedulers",
    "MinWebservers",
    "MaxWebservers",
    "NetworkConfiguration",
    "WebserverAccessMode",
    "WeeklyMaintenanceWindowStart",
    "KmsKey",
    "EndpointManagement",
)


def describe(record: EnvironmentRecord, *, account_id: str, webserver_url: str | None) -> dict[str, Any]:
    """The ``Environment`` shape of GetEnvironment."""
    config = record.config
    out: dict[str, Any] = {
        "Name": record.name,
        "Arn": record.arn,
        "Status": record.status,
        "CreatedAt": record.created_at,
        "ServiceRoleArn": (
            f"arn:aws:iam::{account_id}:role/aws-service-role/airflow.amazonaws.com/AWSServiceRoleForAmazonMWAA"
        ),
        "Tags": dict(record.tags),
        # The environment's Celery queue (distributed mode), named as MWAA names its SQS queue.
        "CeleryExecutorQueue": queue_arn(record),
        "LoggingConfiguration": describe_logging(
            config.get("LoggingConfiguration"),
            environment=record.name,
            region=record.key.region,
            account_id=record.key.account_id,
        ),
    }
    out.update({member: config[member] for member in _REPORTED if config.get(member) is not None})
    if webserver_url:
        out["WebserverUrl"] = webserver_url
    if record.last_update:
        out["LastUpdate"] = {k: v for k, v in record.last_update.items() if k in _LAST_UPDATE_MEMBERS}
    return out


#: The model's LastUpdate members: nothing else is ever returned, whatever a record holds.
_LAST_UPDATE_MEMBERS = frozenset({"Status", "CreatedAt", "Error", "Source", "WorkerReplacementStrategy"})


def operations(
    service: EnvironmentService,
    *,
    account_id: str,
    webserver_url: Callable[[EnvironmentRecord], str | None] = lambda _record: None,
) -> dict[str, Operation]:
    def env_arn(params: Mapping[str, Any]) -> str:
        return service.arn(str(params["Name"]))

    async def create(ctx: RequestContext) -> Mapping[str, Any]:
        return {"Arn": await run_sync(service.create, ctx.params)}

    async def get(ctx: RequestContext) -> Mapping[str, Any]:
        record = await run_sync(service.get, ctx.params["Name"])
        return {"Environment": describe(record, account_id=account_id, webserver_url=webserver_url(record))}

    async def update(ctx: RequestContext) -> Mapping[str, Any]:
        return {"Arn": await run_sync(service.update, ctx.params)}

    async def delete(ctx: RequestContext) -> Mapping[str, Any]:
        await run_sync(service.delete, ctx.params["Name"])
        return {}

    async def list_(ctx: RequestContext) -> Mapping[str, Any]:
        names, token = await run_sync(
            lambda: service.list_names(
                max_results=ctx.params.get("MaxResults"), next_token=ctx.params.get("NextToken")
            )
        )
        return {"Environments": names, "NextToken": token}

    return {
        "CreateEnvironment": Operation(create, env_arn),
        "GetEnvironment": Operation(get, env_arn),
        "UpdateEnvironment": Operation(update, env_arn),
        "DeleteEnvironment": Operation(delete, env_arn),
        "ListEnvironments": Operation(list_, lambda _params: "*"),
    }
