"""CloudWatch's wire formats: AWS JSON 1.0, and Smithy RPC v2 CBOR.

botocore 1.44's ``cloudwatch`` model lists ``protocols: [smithy-rpc-v2-cbor, json, query]``;
the pinned boto3 and AWS CLI send JSON 1.0 (``POST /`` with ``X-Amz-Target:
GraniteServiceVersion20100801.<Op>``, ``application/x-amz-json-1.0``; seen in their ``--debug``
output), SDKs that prefer CBOR send ``POST /service/GraniteServiceVersion20100801/operation/<Op>``
with ``smithy-protocol: rpc-v2-cbor``. Both carry the same members and are answered in the
format they came in. The service is ``awsQueryCompatible``: an error names its query-protocol
code in ``x-amzn-query-error`` (``InvalidParameterValue;Sender``), which is what botocore maps
to the modeled exception.

Inputs are checked against the subset of the model openmwaa serves (members, types, bounds,
enums); timestamps arrive as epoch seconds (CBOR tag 1) and leave the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from openmwaa.errors import OpenMwaaError, PayloadTooLargeError, ValidationError
from openmwaa.wire import cbor

SERVICE_PATH: Final = "/service/GraniteServiceVersion20100801/operation/"
TARGET_PREFIX: Final = "GraniteServiceVersion20100801."
CBOR_CONTENT_TYPE: Final = b"application/cbor"
JSON_CONTENT_TYPE: Final = b"application/x-amz-json-1.0"
Codec = Literal["json", "cbor"]
MAX_BODY: Final = 1024 * 1024
OPERATIONS: Final = ("ListMetrics", "GetMetricData", "GetMetricStatistics")

#: Our error codes -> (CloudWatch's error shape, its query-protocol code).
ERROR_CODES: Final[Mapping[str, tuple[str, str]]] = {
    "ValidationException": ("InvalidParameterValueException", "InvalidParameterValue"),
    "MissingParameter": ("MissingRequiredParameterException", "MissingParameter"),
    "InvalidParameterCombination": ("InvalidParameterCombinationException", "InvalidParameterCombination"),
    "InvalidNextToken": ("InvalidNextToken", "InvalidNextToken"),
    "AccessDeniedException": ("AccessDeniedException", "AccessDenied"),
    "InternalServerException": ("InternalServiceFault", "InternalServiceError"),
    "ServiceUnavailableException": ("ServiceUnavailableException", "ServiceUnavailable"),
    "ThrottlingException": ("ThrottlingException", "Throttling"),
}

STATISTICS: Final = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
UNITS: Final = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
        "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
        "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
        "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
        "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
    }
)  # fmt: skip

_NUMBER = (int, float)


class MissingParameterError(ValidationError):
    code = "MissingParameter"


class InvalidParameterCombinationError(ValidationError):
    code = "InvalidParameterCombination"


class InvalidNextTokenError(ValidationError):
    code = "InvalidNextToken"


def operation_of(raw_path: str) -> str | None:
    """``/service/GraniteServiceVersion20100801/operation/ListMetrics`` -> ``ListMetrics``."""
    if not raw_path.startswith(SERVICE_PATH):
        return None
    return _operation_name(raw_path[len(SERVICE_PATH) :])


def is_target(target: str | None) -> bool:
    return target is not None and target.startswith(TARGET_PREFIX)


def target_operation(target: str) -> str | None:
    """``GraniteServiceVersion20100801.ListMetrics`` -> ``ListMetrics``."""
    return _operation_name(target[len(TARGET_PREFIX) :]) if is_target(target) else None


def _operation_name(name: str) -> str | None:
    return name if re.fullmatch(r"[A-Z][A-Za-z]{1,63}", name) else None


def parse_input(operation: str, body: bytes, codec: Codec) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise PayloadTooLargeError("The request body is too large.")
    try:
        params = (cbor.decode(body) if body else {}) if codec == "cbor" else json.loads(body or b"{}")
    except (cbor.CborError, ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The request body is not valid {codec.upper()}.") from exc
    if not isinstance(params, dict):
        raise ValidationError("The request body must be a map of members.")
    _check_members(operation, params, _INPUTS[operation])
    return params


# Validation ---------------------------------------------------------------------------------


def _string(low: int, high: int, pattern: str | None = None, enum: frozenset[str] | None = None) -> Any:
    return ("string", low, high, re.compile(pattern) if pattern else None, enum)


_NAMESPACE = _string(1, 255, r"[^:].*")
_NAME = _string(1, 255)
_DIMENSION = {"Name": _string(1, 255), "Value": _string(1, 1024)}
_DIMENSIONS = ("list", 0, 30, ("struct", _DIMENSION, ("Name", "Value")))
_TIME = ("number",)
_PERIOD = ("int", 1, 2**31 - 1)
_TOKEN = _string(1, 4096)
_METRIC = ("struct", {"Namespace": _NAMESPACE, "MetricName": _NAME, "Dimensions": _DIMENSIONS}, ())
_METRIC_STAT = (
    "struct",
    {"Metric": _METRIC, "Period": _PERIOD, "Stat": _string(1, 64), "Unit": _string(1, 32, enum=UNITS)},
    ("Metric", "Period", "Stat"),
)
_QUERY = (
    "struct",
    {
        "Id": _string(1, 255, r"[a-z][a-zA-Z0-9_]*"),
        "MetricStat": _METRIC_STAT,
        "Expression": _string(1, 2048),
        "Label": _string(0, 1024),
        "ReturnData": ("bool",),
        "Period": _PERIOD,
        "AccountId": _string(1, 255),
    },
    ("Id",),
)
_INPUTS: Final[Mapping[str, Members]] = {
    "ListMetrics": (
        {
            "Namespace": _NAMESPACE,
            "MetricName": _NAME,
            "Dimensions": ("list", 0, 10, ("struct", _DIMENSION, ("Name",))),
            "NextToken": _TOKEN,
            "RecentlyActive": _string(1, 8, enum=frozenset({"PT3H"})),
            "IncludeLinkedAccounts": ("bool",),
            "OwningAccount": _string(1, 255),
        },
        (),
    ),
    "GetMetricStatistics": (
        {
            "Namespace": _NAMESPACE,
            "MetricName": _NAME,
            "Dimensions": _DIMENSIONS,
            "StartTime": _TIME,
            "EndTime": _TIME,
            "Period": _PERIOD,
            "Statistics": ("list", 1, 5, _string(1, 16, enum=frozenset(STATISTICS))),
            "ExtendedStatistics": ("list", 1, 10, _string(1, 64)),
            "Unit": _string(1, 32, enum=UNITS),
        },
        ("Namespace", "MetricName", "StartTime", "EndTime", "Period"),
    ),
    "GetMetricData": (
        {
            "MetricDataQueries": ("list", 0, 500, _QUERY),
            "StartTime": _TIME,
            "EndTime": _TIME,
            "NextToken": _TOKEN,
            "ScanBy": _string(1, 32, enum=frozenset({"TimestampDescending", "TimestampAscending"})),
            "MaxDatapoints": ("int", 1, 2**31 - 1),
            "LabelOptions": ("struct", {"Timezone": _string(1, 16)}, ()),
        },
        ("MetricDataQueries", "StartTime", "EndTime"),
    ),
}


Members = tuple[Mapping[str, Any], tuple[str, ...]]


def _check_members(where: str, value: Mapping[str, Any], spec: Members) -> None:
    members, required = spec
    for name, item in value.items():
        if name not in members:
            raise ValidationError(f"Unknown parameter {str(name)[:64]!r} in {where}.")
        _check(f"{where}.{name}", item, members[name])
    for name in required:
        if name not in value:
            raise MissingParameterError(f"The parameter {name} is required.")


def _check(where: str, value: Any, spec: tuple[Any, ...]) -> None:
    kind = spec[0]
    if kind == "string":
        _, low, high, pattern, enum = spec
        if not isinstance(value, str) or not low <= len(value) <= high:
            raise ValidationError(f"The parameter {where} must be a string of {low} to {high} characters.")
        if pattern is not None and not pattern.fullmatch(value):
            raise ValidationError(f"The parameter {where} does not match its pattern.")
        if enum is not None and value not in enum:
            raise ValidationError(f"The parameter {where} must be one of: {', '.join(sorted(enum))}.")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not spec[1] <= value <= spec[2]:
            raise ValidationError(f"The parameter {where} must be an integer from {spec[1]} to {spec[2]}.")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, _NUMBER) or not 0 <= value < 2**40:
            raise ValidationError(f"The parameter {where} must be a timestamp.")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError(f"The parameter {where} must be a boolean.")
    elif kind == "list":
        _, low, high, item = spec
        if not isinstance(value, list) or not low <= len(value) <= high:
            raise ValidationError(f"The parameter {where} must be a list of {low} to {high} items.")
        for index, entry in enumerate(value):
            _check(f"{where}.{index + 1}", entry, item)
    elif kind == "struct":
        if not isinstance(value, dict):
            raise ValidationError(f"The parameter {where} must be a structure.")
        _check_members(where, value, (spec[1], spec[2]))


# Output -------------------------------------------------------------------------------------


def output(body: Mapping[str, Any], codec: Codec) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 200, _headers(codec), _encode(dict(body), codec)


def error_response(
    error: OpenMwaaError, request_id: str, codec: Codec
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    shape, query_code = ERROR_CODES.get(error.code, (error.code, error.code))
    fault = "Sender" if error.sender_fault else "Receiver"
    body = {"__type": f"com.amazonaws.cloudwatch#{shape}", "message": error.message}
    headers = [*_headers(codec), (b"x-amzn-requestid", request_id.encode())]
    if error.code in ERROR_CODES:
        headers.append((b"x-amzn-query-error", f"{query_code};{fault}".encode()))
    return error.status, headers, _encode(body, codec)


def _headers(codec: Codec) -> list[tuple[bytes, bytes]]:
    if codec == "cbor":
        return [(b"content-type", CBOR_CONTENT_TYPE), (b"smithy-protocol", b"rpc-v2-cbor")]
    return [(b"content-type", JSON_CONTENT_TYPE)]


def _encode(body: dict[str, Any], codec: Codec) -> bytes:
    if codec == "cbor":
        return cbor.encode(body)
    return json.dumps(body, default=_json_timestamp, separators=(",", ":")).encode()


def _json_timestamp(value: Any) -> float:
    """JSON 1.0 writes timestamps as epoch seconds."""
    if isinstance(value, cbor.Timestamp):
        return value.seconds
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
