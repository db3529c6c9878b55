"""``GET /_openmwaa/container-credentials/<environment>``: the execution role's credentials for tasks.

The first step of the API pipeline: a request for this path is answered here (or refused) and
goes no further; any other request passes on to routing and SigV4. It is authenticated by the
environment's bearer token (``Authorization``, as botocore's container provider sends
``AWS_CONTAINER_AUTHORIZATION_TOKEN``), compared in constant time; an unknown environment and a
wrong token are refused alike, so the endpoint tells strangers nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Final

from anyio.to_thread import run_sync

from openmwaa.errors import AccessDeniedError, ValidationError
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response
from openmwaa.services.execution_role import PATH_PREFIX, ExecutionRoleService
from openmwaa.store.environments import EnvironmentRecord

SERVICE: Final = "container-credentials"
OPERATION: Final = "GetContainerCredentials"
_NAME = re.compile(r"[a-zA-Z][0-9a-zA-Z_-]{0,79}")  # MWAA's environment name pattern
_REFUSED: Final = "The container credentials token is not valid for this environment."

FindRecord = Callable[[str], EnvironmentRecord | None]


class ServeContainerCredentials:
    def __init__(self, service: ExecutionRoleService, find: FindRecord) -> None:
        self._service = service
        self._find = find

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if not ctx.raw_path.startswith(PATH_PREFIX):
            return None
        ctx.service, ctx.operation = SERVICE, OPERATION
        name = ctx.raw_path[len(PATH_PREFIX) :]
        if ctx.method != "GET" or ctx.raw_query or not _NAME.fullmatch(name):
            raise ValidationError("Expected GET /_openmwaa/container-credentials/<environment name>.")
        record = self._find(name)
        token = ctx.header("authorization") or ""
        if record is None or not token or not self._service.check_token(record, token):
            raise AccessDeniedError(_REFUSED)
        ctx.action, ctx.resource = "sts:AssumeRole", str(record.config.get("ExecutionRoleArn", ""))
        # Issuing a session writes the sessions journal: off the event loop.
        credentials = await run_sync(self._service.credentials, record)
        return Response.json(json.dumps(credentials.as_container_response()).encode())
