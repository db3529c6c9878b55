"""The small interfaces the pipeline plugs together: authentication, authorization, operations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from openmwaa.iam import Decision
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response
from openmwaa.principal import Principal


class Authenticator(Protocol):
    def authenticate(self, ctx: RequestContext) -> Principal:
        """Verify the request's signature; raise an AuthenticationError when it is not valid."""


class Authorizer(Protocol):
    def decide(
        self, principal: Principal, action: str, resource: str, context: Mapping[str, Any]
    ) -> Decision:
        """May ``principal`` perform ``action`` on ``resource``, given the condition keys ``context``?"""


#: An MWAA operation: validated input in ``ctx.params`` -> output members.
OperationHandler = Callable[[RequestContext], Awaitable[Mapping[str, Any]]]
#: A whole non-MWAA service on the same endpoint (STS): answers with its own wire format.
ServiceHandler = Callable[[RequestContext], Awaitable[Response]]
