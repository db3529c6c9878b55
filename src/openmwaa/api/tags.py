"""TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anyio.to_thread import run_sync

from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.steps import Operation
from openmwaa.services.environments import EnvironmentService


def operations(service: EnvironmentService) -> dict[str, Operation]:
    def resource_arn(params: Mapping[str, Any]) -> str:
        return str(params["ResourceArn"])

    async def tag(ctx: RequestContext) -> Mapping[str, Any]:
        await run_sync(service.tag, ctx.params["ResourceArn"], ctx.params["Tags"])
        return {}

    async def untag(ctx: RequestContext) -> Mapping[str, Any]:
        await run_sync(service.untag, ctx.params["ResourceArn"], list(ctx.params["tagKeys"]))
        return {}

    async def list_tags(ctx: RequestContext) -> Mapping[str, Any]:
        record = await run_sync(service.get_by_arn, ctx.params["ResourceArn"])
        return {"Tags": dict(record.tags)}

    return {
        "TagResource": Operation(tag, resource_arn),
        "UntagResource": Operation(untag, resource_arn),
        "ListTagsForResource": Operation(list_tags, resource_arn),
    }
