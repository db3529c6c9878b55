"""``GET /metrics``: the pipeline step that answers a Prometheus scrape (any other request passes on).

The scrape is off unless ``OPENMWAA_METRICS_TOKEN`` is set (404 saying so); it then needs
``Authorization: Bearer <token>``, compared in constant time. Nothing here imports
prometheus_client: a server without the setting neither loads it nor counts anything.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from anyio.to_thread import run_sync

from openmwaa.errors import AccessDeniedError, ResourceNotFoundError
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response
from openmwaa.pipeline.steps import is_s3_request

PATH: Final = "/metrics"
SERVICE: Final = "metrics"
#: The Prometheus text exposition format.
CONTENT_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"


class ServeMetrics:
    def __init__(self, render: Callable[[], bytes] | None, token: str | None) -> None:
        self._render = render
        self._token = token.encode() if token else None

    async def __call__(self, ctx: RequestContext) -> Response | None:
        if ctx.raw_path != PATH or is_s3_request(ctx):
            return None  # (an S3 request for a bucket named "metrics" is S3's)
        ctx.service, ctx.operation = SERVICE, "Scrape"
        if self._token is None or self._render is None:
            raise ResourceNotFoundError(
                "The metrics endpoint is off: set OPENMWAA_METRICS_TOKEN to turn it on."
            )
        given = (ctx.header("authorization") or "").encode()
        if not hmac.compare_digest(given, b"Bearer " + self._token):
            raise AccessDeniedError("A valid metrics bearer token is required.")
        if ctx.method != "GET":
            raise ResourceNotFoundError("Use GET /metrics.")
        body = await run_sync(self._render)
        return Response(200, body, [(b"content-type", CONTENT_TYPE)])
