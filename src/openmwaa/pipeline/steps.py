"""The pipeline's steps, in the order ``app.create_app`` declares them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from openmwaa.errors import UnknownOperationError
from openmwaa.pipeline.authorization import authorize
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authenticator, Authorizer, OperationHandler, ServiceHandler
from openmwaa.pipeline.response import Response
from openmwaa.wire import cloudwatch
from openmwaa.wire.logs_json import operation_of as logs_operation
from openmwaa.wire.model import MwaaWire
from openmwaa.wire.sts import FORM_CONTENT_TYPE
from openmwaa.wire.worker_pool import OPERATION as JOIN_WORKER_POOL
from openmwaa.wire.worker_pool import PATH_PREFIX as WORKER_POOL_PREFIX
from openmwaa.wire.worker_pool import SIGNING_SERVICE as WORKER_POOL_SERVICE

STS_SERVICE = "sts"
MWAA_SERVICE = "airflow"
LOGS_SERVICE = "logs"
S3_SERVICE = "s3"
#: CloudWatch's signing name (its endpoint prefix).
CLOUDWATCH_SERVICE = "monitoring"
_S3_SCOPE = "/s3/aws4_request"


@dataclass(frozen=True)
class Operation:
    """An MWAA operation as the pipeline sees it."""

    handler: OperationHandler
    #: The IAM resource the operation is authorized on, from its input; None when the handler
    #: authorizes itself (InvokeRestApi and CreateWebLoginToken choose among role ARNs).
    resource: Callable[[Mapping[str, Any]], str] | None


def is_sts_request(ctx: RequestContext) -> bool:
    """STS shares the endpoint: a form POST to ``/`` (MWAA has no ``/``; STS by GET is not served)."""
    content_type = (ctx.header("content-type") or "").lower()
    return ctx.raw_path == "/" and ctx.method == "POST" and content_type.startswith(FORM_CONTENT_TYPE)


def is_s3_request(ctx: RequestContext) -> bool:
    """S3 shares the endpoint too: told apart by the SigV4 credential scope (header or pre-signed query)."""
    authorization = ctx.header("authorization") or ""
    if authorization:
        credential = authorization.partition("Credential=")[2].partition(",")[0]
        return credential.endswith(_S3_SCOPE)
    if "X-Amz-Credential=" in ctx.raw_query:
        credential = ctx.raw_query.partition("X-Amz-Credential=")[2].partition("&")[0]
        return unquote(credential).endswith(_S3_SCOPE)
    return False


class RouteRequest:
    """Which service and operation: MWAA routes on method + path; STS is a form POST to ``/``;
    CloudWatch Logs a POST to ``/`` with ``X-Amz-Target``; CloudWatch the same with its own
    target prefix, or a POST under ``/service/GraniteServiceVersion20100801/`` (CBOR); S3 is
    whatever is signed for ``s3`` (its own handler routes it); openmwaa's own JoinWorkerPool is
    its path (signed for ``openmwaa``)."""

    def __init__(self, wire: MwaaWire) -> None:
        self._wire = wire
        self._path_params: dict[str, dict[str, str]] = {}

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if ctx.raw_path.startswith(WORKER_POOL_PREFIX):
            ctx.service, ctx.operation = WORKER_POOL_SERVICE, JOIN_WORKER_POOL
            return None
        if is_s3_request(ctx):
            ctx.service = S3_SERVICE
            return None
        if is_sts_request(ctx):
            ctx.service = STS_SERVICE
            return None
        target = ctx.header("x-amz-target")
        if ctx.method == "POST" and ctx.raw_path == "/" and cloudwatch.is_target(target):
            # CloudWatch (AWS JSON 1.0); SigV4 then insists on the ``monitoring`` scope.
            ctx.service = CLOUDWATCH_SERVICE
            ctx.operation = cloudwatch.target_operation(target or "")
            return None
        if ctx.method == "POST" and ctx.raw_path == "/" and target is not None:
            # CloudWatch Logs (JSON 1.1); SigV4 then insists on the ``logs`` scope.
            ctx.service = LOGS_SERVICE
            ctx.operation = logs_operation(ctx.header("x-amz-target"))
            return None
        if ctx.raw_path.startswith(cloudwatch.SERVICE_PATH):
            # CloudWatch (Smithy RPC v2 CBOR).
            ctx.service = CLOUDWATCH_SERVICE
            ctx.operation = cloudwatch.operation_of(ctx.raw_path)
            return None
        ctx.service = MWAA_SERVICE
        match = self._wire.route(ctx.method, ctx.raw_path)
        ctx.operation = match.operation
        ctx.params = dict(match.path_params)  # replaced by the full input once authenticated
        return None


class Authenticate:
    """SigV4: nothing past this step runs for a request that is not validly signed."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, ctx: RequestContext) -> Response | None:
        ctx.principal = self._authenticator.authenticate(ctx)
        return None


class ParseInput:
    """Validate the whole input against the model (after authentication, so strangers learn nothing)."""

    def __init__(self, wire: MwaaWire) -> None:
        self._wire = wire

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if ctx.service != MWAA_SERVICE or ctx.operation is None:
            return None
        ctx.params = self._wire.parse_input(ctx.operation, ctx.params, ctx.raw_query, ctx.body)
        return None


class Authorize:
    """IAM: ``airflow:<Operation>`` on the operation's resource."""

    def __init__(
        self,
        authorizer: Authorizer,
        operations: Mapping[str, Operation],
        condition_context: Callable[[RequestContext], Mapping[str, Any]],
    ) -> None:
        self._authorizer = authorizer
        self._operations = operations
        self._condition_context = condition_context

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if ctx.service != MWAA_SERVICE or ctx.operation is None:
            return None
        operation = self._operations.get(ctx.operation)
        if operation is None:
            raise UnknownOperationError(f"Operation {ctx.operation} is not implemented.")
        ctx.action = f"airflow:{ctx.operation}"
        if operation.resource is None:
            return None
        ctx.resource = operation.resource(ctx.params)
        authorize(self._authorizer, ctx, ctx.action, ctx.resource, self._condition_context(ctx))
        return None


class Dispatch:
    """Run the operation (or the STS service) and serialize its output."""

    def __init__(
        self,
        wire: MwaaWire,
        operations: Mapping[str, Operation],
        sts: ServiceHandler | None,
        services: Mapping[str, ServiceHandler] | None = None,
    ) -> None:
        self._wire = wire
        self._operations = operations
        self._sts = sts
        #: Further services on the endpoint (``logs``), each a handler of its own requests.
        self._services = dict(services or {})

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if ctx.service == STS_SERVICE:
            if self._sts is None:
                raise UnknownOperationError("STS is not available on this endpoint.")
            return await self._sts(ctx)
        if ctx.service in self._services:
            return await self._services[ctx.service](ctx)
        assert ctx.operation is not None
        output = await self._operations[ctx.operation].handler(ctx)
        body = self._wire.serialize_output(ctx.operation, output)
        return Response.json(body)
