"""InvokeRestApi: authorized on the environment's role ARNs (the handler picks the role)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openmwaa.errors import AccessDeniedError
from openmwaa.pipeline.authorization import first_allowed
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.steps import Operation
from openmwaa.services.environments import EnvironmentService
from openmwaa.services.invoke import NO_ROLE_MESSAGE, RestApiInvoker, role_arns, role_of

PRIVATE_ONLY = "PRIVATE_ONLY"


def operations(
    service: EnvironmentService,
    invoker: RestApiInvoker,
    authorizer: Authorizer,
    condition_context: Callable[[RequestContext], Mapping[str, Any]],
    *,
    region: str,
    account_id: str,
    environment_vpc: str,
) -> dict[str, Operation]:
    async def invoke(ctx: RequestContext) -> Mapping[str, Any]:
        assert ctx.principal is not None
        name = str(ctx.params["Name"])
        context = condition_context(ctx)
        # The most privileged role IAM allows: role ARNs come most privileged first, and the
        # search stops at the first allowed (one policy evaluation for an Admin, not five).
        allowed = first_allowed(
            authorizer, ctx, "airflow:InvokeRestApi", role_arns(region, account_id, name), context
        )
        # IAM first: a caller granted no role learns nothing about the environment (not
        # whether it exists, nor its web server access mode).
        if allowed is None:
            raise AccessDeniedError(NO_ROLE_MESSAGE)
        record = service.get(name)  # served from the repository's cache: no thread hop per call
        mode = record.config.get("WebserverAccessMode", PRIVATE_ONLY)
        if mode == PRIVATE_ONLY and context.get("aws:SourceVpc") != environment_vpc:
            raise AccessDeniedError(
                f"Environment {name} has a private web server: InvokeRestApi is only accepted from "
                f"inside its VPC ({environment_vpc})."
            )
        return await invoker.invoke(
            record=record, principal=ctx.principal, role=role_of(allowed), params=ctx.params
        )

    return {"InvokeRestApi": Operation(invoke, None)}
