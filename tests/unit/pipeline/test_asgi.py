"""The ASGI edge: what it refuses before the pipeline's steps still goes through the finishers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from openmwaa.errors import OpenMwaaError
from openmwaa.pipeline.asgi import ApiApp
from openmwaa.pipeline.chain import Pipeline
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response


def _serialize(error: OpenMwaaError, ctx: RequestContext) -> Response:
    return Response(error.status, error.code.encode())


async def _answer(ctx: RequestContext) -> Response:
    return Response(200, b"ok")


def _call(app: ApiApp, scope: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _scope(raw_path: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "PUT",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": b"",
        "headers": [(b"host", b"x")],
        "client": ("192.0.2.7", 5000),
        "scheme": "http",
    }


@pytest.mark.parametrize(
    ("raw_path", "body", "status"),
    [
        (b"/environments/x-env", b"x" * 2048, 413),  # over the body limit
        (b"/environments/\xc3\xa9t\xc3\xa9", b"", 400),  # a target that is not ASCII
    ],
)
def test_requests_refused_at_the_edge_are_finished(raw_path: bytes, body: bytes, status: int) -> None:
    finished: list[RequestContext] = []
    steps: list[Any] = [_answer]
    pipeline = Pipeline(steps, serializers={}, default_serializer=_serialize, finishers=(finished.append,))
    sent = _call(ApiApp(pipeline.handle, pipeline.reject, max_body=1024), _scope(raw_path), body)
    assert sent[0]["status"] == status
    (ctx,) = finished  # the access log and the audit trail see it
    assert (ctx.status, ctx.error_code, ctx.client_ip) == (status, "ValidationException", "192.0.2.7")
    assert (b"x-amzn-requestid", ctx.request_id.encode()) in sent[0]["headers"]


def test_a_request_within_the_limits_runs_the_steps() -> None:
    finished: list[RequestContext] = []
    steps: list[Any] = [_answer]
    pipeline = Pipeline(steps, serializers={}, default_serializer=_serialize, finishers=(finished.append,))
    sent = _call(ApiApp(pipeline.handle, pipeline.reject, max_body=1024), _scope(b"/environments/x"), b"{}")
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"ok")
    assert finished[0].raw_path == "/environments/x" and finished[0].body == b"{}"
