"""Every operation in the model: botocore's request -> route + parse -> same params; output -> botocore."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import botocore
import botocore.serialize
import botocore.session
import pytest
from botocore.awsrequest import prepare_request_dict

from openmwaa.wire.model import MwaaWire

OPERATIONS = tuple(botocore.session.get_session().get_service_model("mwaa").operation_names)


def test_operation_names_are_the_models(wire: MwaaWire, service_model: Any) -> None:
    assert set(wire.operation_names) == set(service_model.operation_names)
    assert len(OPERATIONS) >= 12


def _botocore_request(
    service_model: Any, operation: str, params: dict[str, Any]
) -> tuple[str, str, str, bytes]:
    serializer = botocore.serialize.create_serializer("rest-json", include_validation=True)
    request = serializer.serialize_to_request(params, service_model.operation_model(operation))
    prepare_request_dict(request, endpoint_url="https://api.mwaa.test")
    split = urlsplit(request["url"])
    body = request["body"]
    return request["method"], split.path, split.query, body if isinstance(body, bytes) else body.encode()


@pytest.mark.parametrize("required_only", [True, False], ids=["required", "all-members"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_botocore_serialized_request_routes_and_parses_back(
    wire: MwaaWire, service_model: Any, sample: Callable[..., Any], operation: str, required_only: bool
) -> None:
    input_shape = service_model.operation_model(operation).input_shape
    params = sample(input_shape, required_only=required_only)
    method, path, query, body = _botocore_request(service_model, operation, params)

    match = wire.route(method, path)
    assert match.operation == operation
    assert wire.parse_input(operation, match.path_params, query, body) == params


@pytest.mark.parametrize("operation", OPERATIONS)
def test_client_call_roundtrips_input_and_output(
    service_model: Any, sample: Callable[..., Any], client_for: Callable[..., Any], operation: str
) -> None:
    operation_model = service_model.operation_model(operation)
    params = sample(operation_model.input_shape, required_only=False)
    output: dict[str, Any] = sample(operation_model.output_shape, required_only=False)
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(name: str, parsed: dict[str, Any]) -> dict[str, Any]:
        seen.append((name, parsed))
        return output

    client = client_for(handler)
    response = getattr(client, botocore.xform_name(operation))(**params)

    assert seen == [(operation, params)]
    response.pop("ResponseMetadata")
    assert response == output


def test_empty_output_is_an_empty_object(wire: MwaaWire) -> None:
    assert wire.serialize_output("DeleteEnvironment", {}) == b"{}"
    assert wire.serialize_output("TagResource", {}) == b"{}"
