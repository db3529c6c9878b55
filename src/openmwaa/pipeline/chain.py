"""The request pipeline: an ordered tuple of small steps over one RequestContext.

A step returns a Response to end the chain early, or None to pass the request on. Errors raised
anywhere are serialized once, at the end, by the serializer of the service the request was
routed to; unexpected exceptions become InternalServerException with the request id (the
traceback goes to the log, never to the wire). Finishers (access log, audit trail) always run,
also for a request the edge refuses before the steps (:meth:`Pipeline.reject`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from openmwaa.errors import InternalServerError, OpenMwaaError
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response

log = logging.getLogger("openmwaa.pipeline")

Step = Callable[[RequestContext], Awaitable[Response | None]]
ErrorSerializer = Callable[[OpenMwaaError, RequestContext], Response]
Finisher = Callable[[RequestContext], None]


class Pipeline:
    def __init__(
        self,
        steps: Sequence[Step],
        *,
        serializers: Mapping[str, ErrorSerializer],
        default_serializer: ErrorSerializer,
        finishers: Sequence[Finisher] = (),
    ) -> None:
        self._steps = tuple(steps)
        self._serializers = dict(serializers)
        self._default_serializer = default_serializer
        self._finishers = tuple(finishers)

    async def handle(self, ctx: RequestContext) -> Response:
        try:
            response = await self._run(ctx)
        except OpenMwaaError as error:
            response = self._serialize(error, ctx)
        except Exception:
            log.exception("request %s failed", ctx.request_id)
            internal = InternalServerError(f"An internal error occurred (request id {ctx.request_id}).")
            response = self._serialize(internal, ctx)
        return self._finish(ctx, response)

    def reject(self, error: OpenMwaaError, ctx: RequestContext) -> Response:
        """Answer a request refused before the steps (body too large, undecodable target).

        It is serialized and finished (access log, audit trail) like any other request.
        """
        return self._finish(ctx, self._serialize(error, ctx))

    def _finish(self, ctx: RequestContext, response: Response) -> Response:
        ctx.status = response.status
        for finish in self._finishers:
            try:
                finish(ctx)
            except Exception:
                log.exception("finisher failed for request %s", ctx.request_id)
        return response

    async def _run(self, ctx: RequestContext) -> Response:
        for step in self._steps:
            response = await step(ctx)
            if response is not None:
                return response
        raise InternalServerError("the request was not answered")

    def _serialize(self, error: OpenMwaaError, ctx: RequestContext) -> Response:
        ctx.error_code = error.code
        serializer = self._serializers.get(ctx.service or "", self._default_serializer)
        return serializer(error, ctx)
