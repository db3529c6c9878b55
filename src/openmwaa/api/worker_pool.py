"""``POST /_openmwaa/worker-pool/<environment>``: a worker on another machine joins the environment.

Routed, authenticated (SigV4 scoped to ``openmwaa``) and audited like every call; authorized as
``openmwaa:JoinWorkerPool`` on the environment's ARN, with the usual condition keys (tags,
source address, ``aws:SecureTransport``). The answer holds the environment's secrets, so it is
given only over HTTPS or to a peer on loopback (``pipeline.transport``), is never cached, and
goes nowhere but the response body: the audit trail and the access log see the request's
metadata only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from anyio.to_thread import run_sync

from openmwaa.errors import AccessDeniedError, ValidationError
from openmwaa.pipeline.authorization import authorize
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.response import Response
from openmwaa.pipeline.transport import is_confidential
from openmwaa.services.worker_pool import WorkerPoolService
from openmwaa.wire.worker_pool import ACTION, ENVIRONMENT_NAME, PATH_PREFIX, parse_join_request

log = logging.getLogger(__name__)

PLAIN_HTTP_REFUSED: Final = (
    "JoinWorkerPool answers with the environment's secrets: call it over HTTPS "
    "(openmwaa's OPENMWAA_TLS_PORT listener), or from this machine's loopback."
)


def make_worker_pool_handler(
    service: WorkerPoolService,
    *,
    authorizer: Authorizer,
    conditions: Callable[[RequestContext], Mapping[str, Any]],
    region: str,
    account_id: str,
) -> Callable[[RequestContext], Awaitable[Response]]:
    async def handle(ctx: RequestContext) -> Response:
        name = ctx.raw_path[len(PATH_PREFIX) :]
        if ctx.method != "POST" or ctx.raw_query or not ENVIRONMENT_NAME.fullmatch(name):
            raise ValidationError("Expected POST /_openmwaa/worker-pool/<environment name>.")
        resource = f"arn:aws:airflow:{region}:{account_id}:environment/{name}"
        ctx.action, ctx.resource, ctx.params = ACTION, resource, {"Name": name}
        if not is_confidential(ctx):
            raise AccessDeniedError(PLAIN_HTTP_REFUSED)
        authorize(authorizer, ctx, ACTION, resource, conditions(ctx))
        worker = parse_join_request(ctx.body)
        grant = await run_sync(service.join, name)
        log.info(
            "request %s: worker %s joined the worker pool of %s",
            ctx.request_id,
            worker or "-",
            name,
        )
        return Response(
            200,
            grant.to_json(),
            [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
        )

    return handle
