import asyncio

from openmwaa.errors import OpenMwaaError, ValidationError
from openmwaa.pipeline.chain import Pipeline
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response


def ctx() -> RequestContext:
    return RequestContext("rid-1", "GET", "/x", "", [], "127.0.0.1", "http", 0.0)


def serializer(tag: str):  # type: ignore[no-untyped-def]
    def serialize(error: OpenMwaaError, c: RequestContext) -> Response:
        return Response(error.status, f"{tag}:{error.code}:{error.message}".encode())

    return serialize


def run(pipeline: Pipeline, c: RequestContext) -> Response:
    return asyncio.run(pipeline.handle(c))


def test_first_answer_ends_the_chain_and_finishers_run() -> None:
    seen: list[str] = []

    async def a(c: RequestContext) -> Response | None:
        seen.append("a")
        return None

    async def b(c: RequestContext) -> Response | None:
        seen.append("b")
        return Response(200, b"ok")

    async def never(c: RequestContext) -> Response | None:
        seen.append("never")
        return None

    finished: list[int] = []
    p = Pipeline(
        [a, b, never],
        serializers={},
        default_serializer=serializer("d"),
        finishers=[lambda c: finished.append(c.status)],
    )
    assert run(p, ctx()).body == b"ok"
    assert seen == ["a", "b"]
    assert finished == [200]


def test_errors_use_the_routed_services_serializer() -> None:
    async def route(c: RequestContext) -> Response | None:
        c.service = "sts"
        raise ValidationError("bad")

    p = Pipeline([route], serializers={"sts": serializer("sts")}, default_serializer=serializer("json"))
    c = ctx()
    response = run(p, c)
    assert response.status == 400
    assert response.body == b"sts:ValidationException:bad"
    assert c.error_code == "ValidationException"


def test_unexpected_exceptions_hide_details_but_carry_request_id() -> None:
    async def boom(c: RequestContext) -> Response | None:
        raise RuntimeError("secret internals")

    p = Pipeline([boom], serializers={}, default_serializer=serializer("json"))
    response = run(p, ctx())
    assert response.status == 500
    assert b"secret internals" not in response.body
    assert b"rid-1" in response.body


def test_a_failing_finisher_does_not_change_the_answer() -> None:
    async def ok(c: RequestContext) -> Response | None:
        return Response(200, b"ok")

    def bad_finisher(c: RequestContext) -> None:
        raise RuntimeError("audit down")

    p = Pipeline([ok], serializers={}, default_serializer=serializer("json"), finishers=[bad_finisher])
    assert run(p, ctx()).status == 200
