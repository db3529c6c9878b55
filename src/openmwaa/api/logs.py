"""CloudWatch Logs on openmwaa's endpoint: the pipeline's ``logs`` service.

Each operation is authorized as ``logs:<Operation>`` by the same IAM engine: DescribeLogGroups
per group (a caller sees only the groups it may describe), DescribeLogStreams and
FilterLogEvents on ``arn:aws:logs:<region>:<account>:log-group:<name>:*``, GetLogEvents on the
stream's ARN ``...:log-group:<name>:log-stream:<stream>``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from anyio.to_thread import run_sync

from openmwaa.errors import UnknownOperationError
from openmwaa.logs.service import LogsService
from openmwaa.pipeline.authorization import allowed_resources, authorize
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.response import Response
from openmwaa.wire import logs_json


def make_logs_handler(
    service: LogsService,
    *,
    authorizer: Authorizer,
    conditions: Callable[[RequestContext], Mapping[str, Any]],
) -> Callable[[RequestContext], Awaitable[Response]]:
    async def handle(ctx: RequestContext) -> Response:
        operation = ctx.operation
        if operation is None or operation not in logs_json.SCHEMAS:
            raise UnknownOperationError(f"Operation {str(operation)[:64]} is not implemented.")
        params = logs_json.parse_input(operation, ctx.body)
        ctx.params = params
        action = f"logs:{operation}"
        keys = conditions(ctx)
        if operation == "DescribeLogGroups":
            candidates = await run_sync(
                service.group_names,
                str(params.get("logGroupNamePrefix") or ""),
                params.get("logGroupNamePattern"),
            )
            arns = {service.group_arn(name) + ":*": name for name, _created in candidates}
            allowed = set(allowed_resources(authorizer, ctx, action, list(arns), keys))
            if not arns:
                ctx.action, ctx.resource = action, service.group_arn("*")
            names = {arns[arn] for arn in allowed}
            result = await run_sync(service.describe_log_groups, params, names.__contains__)
            return Response.from_wire(logs_json.output(result))
        group = service.group_name(params)
        if operation == "GetLogEvents":
            resource = f"{service.group_arn(group)}:log-stream:{params['logStreamName']}"
        else:
            resource = service.group_arn(group) + ":*"
        authorize(authorizer, ctx, action, resource, keys)
        run = {
            "DescribeLogStreams": service.describe_log_streams,
            "GetLogEvents": service.get_log_events,
            "FilterLogEvents": service.filter_log_events,
        }[operation]
        result = await run_sync(functools.partial(run, group, params))
        return Response.from_wire(logs_json.output(result))

    return handle
