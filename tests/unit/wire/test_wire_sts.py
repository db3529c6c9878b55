"""STS's query protocol on the wire: form parameters in, XML that botocore's parser reads out."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.parsers import QueryParser

from openmwaa.errors import AccessDeniedError, PayloadTooLargeError, ValidationError
from openmwaa.wire.sts import MAX_PARAMS_BYTES, error_response, parse_params, result_response


def test_result_xml_parses_with_botocore_query_parser() -> None:
    model = boto3.session.Session()._session.get_service_model("sts")
    shape = model.operation_model("AssumeRole").output_shape
    expiration = dt.datetime(2026, 11, 27, 13, 0, tzinfo=dt.timezone.utc)
    result = {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLE000000001",
            "SecretAccessKey": "s<e>c&ret",
            "SessionToken": "tok",
            "Expiration": expiration,
        },
        "AssumedRoleUser": {"AssumedRoleId": "AROAX:s", "Arn": "arn:aws:sts::123456789012:assumed-role/R/s"},
    }
    status, headers, body = result_response("AssumeRole", result, "rid-9")
    assert status == 200
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
    assert parsed["Credentials"]["SecretAccessKey"] == "s<e>c&ret"
    assert parsed["Credentials"]["Expiration"] == expiration
    assert parsed["AssumedRoleUser"]["Arn"] == result["AssumedRoleUser"]["Arn"]  # type: ignore[index]
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-9"
    assert (b"content-type", b"text/xml") in headers


def test_error_xml_parses_with_botocore_query_parser() -> None:
    status, headers, body = error_response(AccessDeniedError("nope & <no>"), "rid-3")
    assert (b"content-type", b"text/xml") in headers
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": status}, None)
    assert parsed["Error"] == {"Type": "Sender", "Code": "AccessDenied", "Message": "nope & <no>"}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-3"
    assert status == 403


def test_parse_params_rejects_repeats_and_garbage() -> None:
    assert parse_params(b"Action=AssumeRole&RoleSessionName=a%2Bb") == {
        "Action": "AssumeRole",
        "RoleSessionName": "a+b",
    }
    with pytest.raises(ValidationError):
        parse_params(b"Action=A&Action=B")
    with pytest.raises(ValidationError):
        parse_params(b"\xff\xfe")
    with pytest.raises(PayloadTooLargeError):
        parse_params(b"A=" + b"x" * MAX_PARAMS_BYTES)
