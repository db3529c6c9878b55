"""CloudWatch on openmwaa's endpoint: the pipeline's ``monitoring`` service.

Each operation is authorized as ``cloudwatch:<Operation>`` by the same IAM engine. These
read actions take no resource-level permissions in AWS, so the resource is ``*``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from anyio.to_thread import run_sync

from openmwaa.errors import UnknownOperationError
from openmwaa.metrics.cloudwatch import CloudWatchService
from openmwaa.pipeline.authorization import authorize
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.response import Response
from openmwaa.wire import cloudwatch


def codec_of(ctx: RequestContext) -> cloudwatch.Codec:
    """JSON 1.0 for ``POST /`` with a target, CBOR for the ``/service/...`` path."""
    return "cbor" if ctx.raw_path.startswith(cloudwatch.SERVICE_PATH) else "json"


def make_cloudwatch_handler(
    service: CloudWatchService,
    *,
    authorizer: Authorizer,
    conditions: Callable[[RequestContext], Mapping[str, Any]],
) -> Callable[[RequestContext], Awaitable[Response]]:
    runs: Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
        "ListMetrics": service.list_metrics,
        "GetMetricStatistics": service.get_metric_statistics,
        "GetMetricData": service.get_metric_data,
    }

    async def handle(ctx: RequestContext) -> Response:
        operation = ctx.operation
        if operation is None or operation not in runs or ctx.method != "POST":
            raise UnknownOperationError(f"Operation {str(operation)[:64]} is not implemented.")
        codec = codec_of(ctx)
        params = cloudwatch.parse_input(operation, ctx.body, codec)
        ctx.params = params
        authorize(authorizer, ctx, f"cloudwatch:{operation}", "*", conditions(ctx))
        result = await run_sync(runs[operation], params)
        return Response.from_wire(cloudwatch.output(result, codec))

    return handle
