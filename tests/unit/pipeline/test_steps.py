"""The pipeline's steps on their own."""

from __future__ import annotations

import pytest

from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.steps import is_sts_request

FORM = ("content-type", "application/x-www-form-urlencoded; charset=utf-8")


def _ctx(method: str, path: str, headers: list[tuple[str, str]], query: str = "") -> RequestContext:
    return RequestContext("rid", method, path, query, headers, "127.0.0.1", "http", 0.0)


@pytest.mark.parametrize(
    ("ctx", "sts"),
    [
        (_ctx("POST", "/", [FORM]), True),
        (_ctx("POST", "/", [("content-type", "APPLICATION/X-WWW-FORM-URLENCODED")]), True),
        # STS by GET is not served: only the form POST reaches the STS handler.
        (_ctx("GET", "/", [], "Action=GetCallerIdentity&Version=2011-06-15"), False),
        (_ctx("POST", "/", [("content-type", "application/json")]), False),
        (_ctx("POST", "/", []), False),
        (_ctx("POST", "/restapi/x", [FORM]), False),
    ],
)
def test_sts_detection(ctx: RequestContext, sts: bool) -> None:
    assert is_sts_request(ctx) is sts
