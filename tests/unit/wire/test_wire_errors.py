"""Every modeled error (and our unmodeled ones) reaches a real botocore client as the right exception."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import botocore.parsers
import pytest
from botocore.exceptions import ClientError

from openmwaa.errors import (
    AccessDeniedError,
    InternalServerError,
    InvalidSignatureError,
    OpenMwaaError,
    PayloadTooLargeError,
    ResourceNotFoundError,
    RestApiClientError,
    RestApiServerError,
    ServiceUnavailableError,
    ThrottlingError,
    UnknownOperationError,
    ValidationError,
)
from openmwaa.wire.error_response import serialize_error
from openmwaa.wire.model import MwaaWire

AIRFLOW_BODY = {"detail": "DAG with dag_id: 'nope' not found", "status": 404, "ok": False}

#: One instance per error shape the model declares, with the members botocore should expose.
MODELED: dict[str, tuple[OpenMwaaError, dict[str, Any]]] = {
    "AccessDeniedException": (
        AccessDeniedError("No Airflow role granted in IAM."),
        {"Message": "No Airflow role granted in IAM."},
    ),
    "ValidationException": (
        ValidationError("1 validation error detected: x"),
        {"message": "1 validation error detected: x"},
    ),
    "ResourceNotFoundException": (
        ResourceNotFoundError("Environment nope not found"),
        {"message": "Environment nope not found"},
    ),
    "InternalServerException": (
        InternalServerError("Internal error (request req-1)"),
        {"message": "Internal error (request req-1)"},
    ),
    "ServiceUnavailableException": (ServiceUnavailableError("try later"), {"message": "try later"}),
    "RestApiClientException": (
        RestApiClientError("Airflow answered 404", 404, AIRFLOW_BODY),
        {"RestApiStatusCode": 404, "RestApiResponse": AIRFLOW_BODY},
    ),
    "RestApiServerException": (
        RestApiServerError("Airflow answered 500", 500, {"detail": "boom"}),
        {"RestApiStatusCode": 500, "RestApiResponse": {"detail": "boom"}},
    ),
}


def _raise(error: OpenMwaaError) -> Any:
    def handler(operation: str, params: dict[str, Any]) -> NoReturn:
        raise error

    return handler


def test_every_modeled_error_shape_is_covered(wire: MwaaWire) -> None:
    assert set(wire.error_shapes) == set(MODELED)


@pytest.mark.parametrize("code", sorted(MODELED))
def test_modeled_error_reaches_the_client_as_its_exception(client_for: Callable[..., Any], code: str) -> None:
    error, members = MODELED[code]
    client = client_for(_raise(error))
    exception_class = getattr(client.exceptions, code)

    with pytest.raises(exception_class) as caught:
        client.invoke_rest_api(Name="my-env", Path="/dags", Method="GET")

    response = caught.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == error.status
    assert response["ResponseMetadata"]["RequestId"] == "req-1"
    for key, value in members.items():
        assert response[key] == value
    if "Message" not in members:
        assert response["Error"]["Message"] == error.message


@pytest.mark.parametrize("code", sorted(MODELED))
def test_modeled_error_parses_with_rest_json_parser(service_model: Any, code: str) -> None:
    error, members = MODELED[code]
    status, headers, body = serialize_error(error, "req-9")
    response = {"status_code": status, "headers": {k.decode(): v.decode() for k, v in headers}, "body": body}
    parser = botocore.parsers.create_parser("rest-json")

    generic = parser.parse(response, service_model.operation_model("InvokeRestApi").output_shape)
    modeled = parser.parse(response, service_model.shape_for_error_code(generic["Error"]["Code"]))

    assert generic["Error"]["Code"] == code
    assert status == service_model.shape_for(code).metadata["error"]["httpStatusCode"]
    for key, value in members.items():
        assert modeled[key] == value


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ThrottlingError(), 429, "ThrottlingException"),
        (UnknownOperationError("no such operation"), 404, "UnknownOperationException"),
        (InvalidSignatureError("Signature expired"), 403, "InvalidSignatureException"),
        (PayloadTooLargeError("too big"), 413, "ValidationException"),
    ],
)
def test_unmodeled_errors_are_client_errors_with_their_code(
    client_for: Callable[..., Any], error: OpenMwaaError, status: int, code: str
) -> None:
    client = client_for(_raise(error))
    with pytest.raises(ClientError) as caught:
        client.get_environment(Name="my-env")
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["Error"]["Message"] == error.message
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_error_response_headers_and_body() -> None:
    status, headers, body = serialize_error(AccessDeniedError("denied"), "abc-123")
    assert status == 403
    assert dict(headers) == {
        b"content-type": b"application/json",
        b"x-amzn-errortype": b"AccessDeniedException",
        b"x-amzn-requestid": b"abc-123",
    }
    assert json.loads(body) == {"Message": "denied", "__type": "AccessDeniedException"}


def test_request_id_cannot_inject_headers() -> None:
    _, headers, _ = serialize_error(ValidationError("x"), "id\r\nSet-Cookie: a=b")
    assert dict(headers)[b"x-amzn-requestid"] == b"idSet-Cookie:a=b"


def test_validation_failure_reaches_client_as_validation_exception(client_for: Callable[..., Any]) -> None:
    client = client_for(lambda operation, params: {})
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.list_environments(MaxResults=26)
    assert caught.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '26' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 25"
    )
