"""``/_openmwaa/execution/<environment>/...``: Airflow 3's execution API, for workers on other machines.

A Celery worker runs each task through the api-server's execution API (``[core]
execution_api_server_url``). An environment's api-servers listen on openmwaa's loopback, out of
a remote worker's reach, so openmwaa forwards this path to one of them (``/execution/...``),
and the worker is configured with it. What is exposed, and to whom:

- only over HTTPS or from loopback (``pipeline.transport``): a task token is a bearer credential;
- only requests carrying a token the environment's scheduler signed for this API (signature,
  audience, expiry: ``auth.task_tokens``); anything else is refused here, an unknown environment
  alike, so strangers learn nothing and reach nothing (not even Airflow's unauthenticated health
  routes); Airflow then checks the token again, with the task and scopes it names;
- only paths below ``/execution/``. The token travels on to Airflow: it is Airflow's own
  credential for Airflow, unlike a caller's SigV4 ``Authorization``, which never does.

Every request is audited as ``openmwaa:ExecutionApi`` on the environment's ARN (not an IAM
action: the task token authorizes it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Protocol

from openmwaa.auth.task_tokens import audiences, is_task_token
from openmwaa.errors import AccessDeniedError, ServiceUnavailableError, ValidationError
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response
from openmwaa.pipeline.transport import is_confidential
from openmwaa.services.worker_pool import EXECUTION_API_PREFIX
from openmwaa.store.environments import EnvironmentRecord
from openmwaa.upstream.balancer import Lease
from openmwaa.upstream.client import Http1Client
from openmwaa.upstream.errors import UpstreamError
from openmwaa.upstream.request import HOP_BY_HOP, UpstreamRequest
from openmwaa.wire.worker_pool import ENVIRONMENT_NAME

SERVICE: Final = "execution-api"
OPERATION: Final = "ExecutionApi"
ACTION: Final = "openmwaa:ExecutionApi"
REFUSED: Final = "The request does not carry a valid task token of this environment."
MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
TIMEOUT_SECONDS: Final = 60.0
_REST: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]{1,2000}")
#: Connection-level headers, and the framing the upstream client sets itself.
_HOP_BY_HOP: Final = HOP_BY_HOP | {"host", "content-length"}

FindRecord = Callable[[str], EnvironmentRecord | None]


class Endpoints(Protocol):
    def lease(self, key: str) -> Lease | None: ...


class ForwardExecutionApi:
    """A pipeline step: answers requests for the prefix, passes every other one on."""

    def __init__(self, find: FindRecord, endpoints: Endpoints, client: Http1Client) -> None:
        self._find = find
        self._endpoints = endpoints
        self._client = client

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if not ctx.raw_path.startswith(EXECUTION_API_PREFIX):
            return None
        ctx.service, ctx.operation, ctx.action = SERVICE, OPERATION, ACTION
        name, _, rest = ctx.raw_path[len(EXECUTION_API_PREFIX) :].partition("/")
        if not ENVIRONMENT_NAME.fullmatch(name) or not _REST.fullmatch(rest) or _dot_segment(rest):
            raise ValidationError("Expected /_openmwaa/execution/<environment name>/<execution API path>.")
        if not is_confidential(ctx):
            raise AccessDeniedError("The execution API is served over HTTPS, or from loopback, only.")
        record = self._find(name)
        if record is not None:
            ctx.resource = record.arn
        token = _bearer(ctx.header("authorization"))
        options = dict(record.config.get("AirflowConfigurationOptions") or {}) if record else {}
        secret = record.secrets.get("jwt_secret", "") if record is not None else ""
        if record is None or not is_task_token(token, secret, audiences(options)):
            ctx.decision = "Deny"
            raise AccessDeniedError(REFUSED)
        ctx.decision, ctx.deciding_statement = "Allow", "Airflow task token"
        lease = self._endpoints.lease(str(record.key))
        if lease is None:
            raise ServiceUnavailableError(f"Environment {name} has no api-server running right now.")
        return await self._forward(ctx, lease, rest)

    async def _forward(self, ctx: RequestContext, lease: Lease, rest: str) -> Response:
        host, _, port = lease.url.removeprefix("http://").rstrip("/").rpartition(":")
        target = f"/execution/{rest}" + (f"?{ctx.raw_query}" if ctx.raw_query else "")
        headers = [
            (k, v) for k, v in ctx.headers if k not in _HOP_BY_HOP and not k.startswith("x-forwarded-")
        ]
        body = ctx.body if ctx.body or ctx.method not in ("GET", "HEAD", "DELETE") else None
        request = UpstreamRequest(ctx.method, host, int(port), target, headers, body)
        try:
            stream = await self._client.open(request, timeout=TIMEOUT_SECONDS)
            try:
                content = await stream.read(MAX_RESPONSE_BYTES)
            finally:
                await stream.aclose()
        except (UpstreamError, ValueError) as exc:
            lease.failed()
            unreachable = f"The api-server could not be reached ({type(exc).__name__})."
            raise ServiceUnavailableError(unreachable) from exc
        except BaseException:
            lease.release()
            raise
        lease.release()
        # Airflow's headers as sent (Refreshed-API-Token among them), framing left to this hop.
        answer = [(n, v) for n, v in stream.headers if n.decode("latin-1") not in _HOP_BY_HOP]
        return Response(stream.status, content, answer)


def _bearer(value: str | None) -> str:
    scheme, _, token = (value or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _dot_segment(rest: str) -> bool:
    """A ``.``, ``..`` (also percent-encoded) or empty segment: anything that could climb out."""
    segments = rest.replace("%2e", ".").replace("%2E", ".").split("/")
    if segments[-1] == "":
        segments.pop()  # a trailing slash
    return not segments or any(segment in ("", ".", "..") for segment in segments)
