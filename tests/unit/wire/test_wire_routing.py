from __future__ import annotations

import pytest

from openmwaa.errors import UnknownOperationError, ValidationError
from openmwaa.wire.model import MwaaWire
from openmwaa.wire.routing import Route, RouteTable

ENCODED_ARN = "arn%3Aaws%3Aairflow%3Aus-east-1%3A123456789012%3Aenvironment%2Fmy-env"
ARN = "arn:aws:airflow:us-east-1:123456789012:environment/my-env"


@pytest.mark.parametrize(
    ("method", "path", "operation", "params"),
    [
        ("PUT", "/environments/my-env", "CreateEnvironment", {"Name": "my-env"}),
        ("GET", "/environments/my-env", "GetEnvironment", {"Name": "my-env"}),
        ("PATCH", "/environments/my-env", "UpdateEnvironment", {"Name": "my-env"}),
        ("DELETE", "/environments/my-env", "DeleteEnvironment", {"Name": "my-env"}),
        ("GET", "/environments", "ListEnvironments", {}),
        ("POST", f"/tags/{ENCODED_ARN}", "TagResource", {"ResourceArn": ARN}),
        ("GET", f"/tags/{ENCODED_ARN}", "ListTagsForResource", {"ResourceArn": ARN}),
        ("DELETE", f"/tags/{ENCODED_ARN}", "UntagResource", {"ResourceArn": ARN}),
        ("POST", "/clitoken/my-env", "CreateCliToken", {"Name": "my-env"}),
        ("POST", "/webtoken/my-env", "CreateWebLoginToken", {"Name": "my-env"}),
        ("POST", "/restapi/my-env", "InvokeRestApi", {"Name": "my-env"}),
        ("POST", "/metrics/environments/my-env", "PublishMetrics", {"EnvironmentName": "my-env"}),
        ("get", "/environments/my-env", "GetEnvironment", {"Name": "my-env"}),
    ],
)
def test_routes(wire: MwaaWire, method: str, path: str, operation: str, params: dict[str, str]) -> None:
    match = wire.route(method, path)
    assert match.operation == operation
    assert match.path_params == params


def test_labels_are_decoded_after_splitting(wire: MwaaWire) -> None:
    # A decoded '/' inside a label must not create a new segment, and '%25' is a literal '%'.
    assert wire.route("GET", "/environments/a%2Fb").path_params == {"Name": "a/b"}
    assert wire.route("GET", "/environments/a%252F").path_params == {"Name": "a%2F"}
    assert wire.route("GET", "/environments/%C3%A9t%C3%A9").path_params == {"Name": "été"}


@pytest.mark.parametrize(
    "path",
    [
        "/environments/",  # trailing slash on a label-less path is an empty label: no match
        "/environments/my-env/",
        "/environments//my-env",
        "/environments/my-env/extra",
        "/Environments/my-env",
        "/",
        "/nope",
        "environments/my-env",
        "/tags/arn:aws:airflow:us-east-1:123456789012:environment/my-env",  # unencoded ARN: 2 segments
    ],
)
def test_unknown_paths(wire: MwaaWire, path: str) -> None:
    with pytest.raises(UnknownOperationError, match=r"No operation matches|must start with"):
        wire.route("GET", path)


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/environments/e"), ("PUT", "/environments"), ("GET", "/restapi/e")]
)
def test_known_path_wrong_method(wire: MwaaWire, method: str, path: str) -> None:
    with pytest.raises(UnknownOperationError, match=f"No operation accepts method {method}") as caught:
        wire.route(method, path)
    assert caught.value.status == 404


def test_label_with_invalid_utf8_is_a_validation_error(wire: MwaaWire) -> None:
    with pytest.raises(ValidationError, match="Path is not valid percent-encoded UTF-8"):
        wire.route("GET", "/environments/%ff")


def test_literal_segments_win_over_labels() -> None:
    table = RouteTable(
        [
            Route.from_request_uri("GetThing", "GET", "/things/{Id}"),
            Route.from_request_uri("ListOwn", "GET", "/things/mine"),
        ]
    )
    assert table.route("GET", "/things/mine").operation == "ListOwn"
    assert table.route("GET", "/things/other").operation == "GetThing"


def test_greedy_label_and_constant_query_in_request_uri() -> None:
    table = RouteTable([Route.from_request_uri("GetObject", "GET", "/{Bucket}/{Key+}?x-id=GetObject")])
    match = table.route("GET", "/b/dir/a%2Fb/c")
    assert match.operation == "GetObject"
    assert match.path_params == {"Bucket": "b", "Key": "dir/a/b/c"}
    with pytest.raises(UnknownOperationError):
        table.route("GET", "/b/")
