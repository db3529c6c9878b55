"""The small interfaces the pipeline plugs together: authentication, authorization, operations, audit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from openmwaa.auth.principal import Principal
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response


class Authenticator(Protocol):
    def authenticate(self, ctx: RequestContext) -> Principal:
        """Verify the request's signature; raise an AuthenticationError when it is not valid."""


class Authorizer(Protocol):
    def authorize(self, ctx: RequestContext, action: str, resource: str, context: Mapping[str, Any]) -> None:
        """Raise AccessDeniedError unless ``ctx.principal`` may perform ``action`` on ``resource``."""

    def allowed_resources(
        self, ctx: RequestContext, action: str, resources: Sequence[str], context: Mapping[str, Any]
    ) -> list[str]:
        """Those of ``resources`` on which ``ctx.principal`` may perform ``action``."""


class AuditSink(Protocol):
    def record(self, ctx: RequestContext) -> None: ...


#: An MWAA operation: validated input in ``ctx.params`` -> output members.
OperationHandler = Callable[[RequestContext], Awaitable[Mapping[str, Any]]]
#: A whole non-MWAA service on the same endpoint (STS): answers with its own wire format.
ServiceHandler = Callable[[RequestContext], Awaitable[Response]]
