from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import botocore.parsers
import pytest

from openmwaa.strict_json import json_fragment
from openmwaa.wire.model import MwaaWire

CREATED = datetime(2024, 5, 1, 12, 30, 15, 500000, tzinfo=timezone(timedelta(hours=2)))


def _botocore_parse(service_model: Any, operation: str, body: bytes) -> dict[str, Any]:
    parser = botocore.parsers.create_parser("rest-json")
    response = {"status_code": 200, "headers": {}, "body": body}
    parsed: dict[str, Any] = parser.parse(response, service_model.operation_model(operation).output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def test_timestamps_are_epoch_seconds_and_none_is_dropped(wire: MwaaWire, service_model: Any) -> None:
    result = {
        "Environment": {
            "Name": "e",
            "CreatedAt": CREATED,
            "KmsKey": None,
            "LastUpdate": {
                "Status": "SUCCESS",
                "CreatedAt": datetime(2024, 1, 1),
                "Error": None,
            },  # naive = UTC
        }
    }
    body = wire.serialize_output("GetEnvironment", result)
    decoded = json.loads(body)
    assert decoded == {
        "Environment": {
            "Name": "e",
            "CreatedAt": CREATED.timestamp(),
            "LastUpdate": {"Status": "SUCCESS", "CreatedAt": 1704067200},
        }
    }
    parsed = _botocore_parse(service_model, "GetEnvironment", body)
    assert parsed["Environment"]["CreatedAt"] == CREATED
    assert parsed["Environment"]["LastUpdate"]["CreatedAt"] == datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_epoch_float_timestamps_pass_through(wire: MwaaWire) -> None:
    body = wire.serialize_output("GetEnvironment", {"Environment": {"CreatedAt": 1714566615.25}})
    assert json.loads(body) == {"Environment": {"CreatedAt": 1714566615.25}}


def test_rest_api_response_document_keeps_json_types(wire: MwaaWire, service_model: Any) -> None:
    result = {"RestApiStatusCode": 200, "RestApiResponse": {"is_paused": False, "dags": [], "total": 0}}
    body = wire.serialize_output("InvokeRestApi", result)
    assert _botocore_parse(service_model, "InvokeRestApi", body) == result


def test_unknown_result_member_is_a_bug(wire: MwaaWire) -> None:
    with pytest.raises(ValueError, match="'Secret' is not a member of CreateEnvironmentOutput"):
        wire.serialize_output("CreateEnvironment", {"Arn": "arn", "Secret": "x"})
    with pytest.raises(ValueError, match="not a timestamp"):
        wire.serialize_output("GetEnvironment", {"Environment": {"CreatedAt": "yesterday"}})


def test_list_environments_output(wire: MwaaWire, service_model: Any) -> None:
    body = wire.serialize_output("ListEnvironments", {"Environments": [], "NextToken": None})
    assert body == b'{"Environments":[]}'
    assert _botocore_parse(service_model, "ListEnvironments", body) == {"Environments": []}


def test_wrongly_typed_result_is_a_bug(wire: MwaaWire) -> None:
    with pytest.raises(ValueError, match="EnvironmentList must be a list"):
        wire.serialize_output("ListEnvironments", {"Environments": "my-env"})


def test_what_orjson_cannot_write_is_written_by_json(wire: MwaaWire, service_model: Any) -> None:
    """An integer over 64 bits: the same JSON, through the stdlib encoder."""
    document = {"huge": 2**70, "text": "café"}
    body = wire.serialize_output("InvokeRestApi", {"RestApiStatusCode": 200, "RestApiResponse": document})
    assert json.loads(body) == {"RestApiStatusCode": 200, "RestApiResponse": document}
    assert _botocore_parse(service_model, "InvokeRestApi", body)["RestApiResponse"] == document


def test_a_validated_fragment_is_spliced_in_unchanged(wire: MwaaWire, service_model: Any) -> None:
    """Airflow's bytes as they came (spacing, escapes, number forms): botocore reads the same document."""
    document = b' {"z": "caf\\u00e9 \xe2\x98\x95", "a" : [1.0, 1E2, -0, 18446744073709551615], "n": null}\n'
    fragment = json_fragment(document)
    assert fragment is not None
    body = wire.serialize_output("InvokeRestApi", {"RestApiStatusCode": 200, "RestApiResponse": fragment})
    assert body == b'{"RestApiStatusCode":200,"RestApiResponse":' + document + b"}"
    parsed = _botocore_parse(service_model, "InvokeRestApi", body)
    assert parsed == {"RestApiStatusCode": 200, "RestApiResponse": json.loads(document)}
