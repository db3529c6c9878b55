"""PublishMetrics: MWAA's internal, deprecated metrics call, accepted and discarded.

MWAA's own workers call it to push environment health to CloudWatch; there is no CloudWatch
here. It is still authorized (``airflow:PublishMetrics`` on the environment ARN), validated
against the model and answered with its modeled success or error rather than an unknown
operation. Its model lists only ValidationException and InternalServerException, so an unknown
environment is a ValidationException here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anyio.to_thread import run_sync

from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.steps import Operation
from openmwaa.services.environments import EnvironmentService


def operations(service: EnvironmentService) -> dict[str, Operation]:
    def environment_arn(params: Mapping[str, Any]) -> str:
        return service.arn(str(params["EnvironmentName"]))

    async def publish(ctx: RequestContext) -> Mapping[str, Any]:
        try:
            await run_sync(service.get, str(ctx.params["EnvironmentName"]))
        except ResourceNotFoundError as exc:
            raise ValidationError(exc.message) from exc
        return {}

    return {"PublishMetrics": Operation(publish, environment_arn)}
