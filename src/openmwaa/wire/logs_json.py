"""CloudWatch Logs' wire format (AWS JSON 1.1): ``X-Amz-Target: Logs_20140328.<Op>``, JSON in and out.

Inputs are checked here against the subset of botocore's ``logs`` model that openmwaa serves:
known members only, each of its type and within its bounds. Errors carry the code botocore maps
to the service's modeled exceptions (``InvalidParameterException``, ``ResourceNotFoundException``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from openmwaa.errors import OpenMwaaError, PayloadTooLargeError, ValidationError

TARGET_PREFIX: Final = "Logs_20140328."
CONTENT_TYPE: Final = b"application/x-amz-json-1.1"
MAX_BODY: Final = 1024 * 1024

#: Our error codes -> CloudWatch Logs' (botocore builds the exception class from the code).
LOGS_ERROR_CODES: Final = {
    "ValidationException": "InvalidParameterException",
    "UnknownOperationException": "UnknownOperationException",
}

_GROUP_NAME = (str, 1, 512, re.compile(r"[.\-_/#A-Za-z0-9]+"))
_GROUP_ID = (str, 1, 2048, re.compile(r"[\w#+=/:,.@-]*"))
_STREAM_NAME = (str, 1, 512, re.compile(r"[^:*]*"))
_TOKEN = (str, 1, 4096, None)
_TIME = (int, 0, 2**53, None)
_BOOL = (bool, None, None, None)
_DESCRIBE_LIMIT = (int, 1, 50, None)
_EVENTS_LIMIT = (int, 1, 10_000, None)

#: Operation -> member -> (type, min, max, pattern); a list member is ``[spec, max items]``.
SCHEMAS: Final[Mapping[str, Mapping[str, Any]]] = {
    "DescribeLogGroups": {
        "logGroupNamePrefix": _GROUP_NAME,
        "logGroupNamePattern": (str, 0, 512, re.compile(r"[.\-_/#A-Za-z0-9]*")),
        "nextToken": _TOKEN,
        "limit": _DESCRIBE_LIMIT,
        "includeLinkedAccounts": _BOOL,
        "logGroupClass": (str, 1, 32, re.compile(r"STANDARD|INFREQUENT_ACCESS|DELIVERY")),
    },
    "DescribeLogStreams": {
        "logGroupName": _GROUP_NAME,
        "logGroupIdentifier": _GROUP_ID,
        "logStreamNamePrefix": _STREAM_NAME,
        "orderBy": (str, 1, 32, re.compile(r"LogStreamName|LastEventTime")),
        "descending": _BOOL,
        "nextToken": _TOKEN,
        "limit": _DESCRIBE_LIMIT,
    },
    "GetLogEvents": {
        "logGroupName": _GROUP_NAME,
        "logGroupIdentifier": _GROUP_ID,
        "logStreamName": _STREAM_NAME,
        "startTime": _TIME,
        "endTime": _TIME,
        "nextToken": _TOKEN,
        "limit": _EVENTS_LIMIT,
        "startFromHead": _BOOL,
        "unmask": _BOOL,
    },
    "FilterLogEvents": {
        "logGroupName": _GROUP_NAME,
        "logGroupIdentifier": _GROUP_ID,
        "logStreamNames": [_STREAM_NAME, 100],
        "logStreamNamePrefix": _STREAM_NAME,
        "startTime": _TIME,
        "endTime": _TIME,
        "filterPattern": (str, 0, 1024, None),
        "nextToken": _TOKEN,
        "limit": _EVENTS_LIMIT,
        "interleaved": _BOOL,
        "unmask": _BOOL,
    },
}
REQUIRED: Final[Mapping[str, tuple[str, ...]]] = {"GetLogEvents": ("logStreamName",)}


def operation_of(target: str | None) -> str | None:
    """``Logs_20140328.GetLogEvents`` -> ``GetLogEvents``; None for anything else."""
    if target is None or not target.startswith(TARGET_PREFIX):
        return None
    name = target[len(TARGET_PREFIX) :]
    return name if re.fullmatch(r"[A-Z][A-Za-z]{1,63}", name) else None


def parse_input(operation: str, body: bytes) -> dict[str, Any]:
    schema = SCHEMAS.get(operation)
    if schema is None:
        raise ValidationError(f"openmwaa does not implement the CloudWatch Logs operation {operation}")
    if len(body) > MAX_BODY:
        raise PayloadTooLargeError("The request body is too large.")
    try:
        params = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("The request body is not valid JSON.") from exc
    if not isinstance(params, dict):
        raise ValidationError("The request body must be a JSON object.")
    for name, value in params.items():
        if name not in schema:
            raise ValidationError(f"Unknown parameter {str(name)[:64]!r} for {operation}.")
        spec = schema[name]
        if isinstance(spec, list):
            item, most = spec
            if not isinstance(value, list) or not 1 <= len(value) <= most:
                raise ValidationError(f"{name} must be a list of 1 to {most} items.")
            for entry in value:
                _check(name, entry, item)
        else:
            _check(name, value, spec)
    for name in REQUIRED.get(operation, ()):
        if name not in params:
            raise ValidationError(f"{name} is required.")
    return params


def _check(name: str, value: Any, spec: tuple[Any, ...]) -> None:
    kind, low, high, pattern = spec
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValidationError(f"{name} must be of type {kind.__name__}.")
    if kind is str:
        if not low <= len(value) <= high:
            raise ValidationError(f"{name} must be {low} to {high} characters.")
        if pattern is not None and not pattern.fullmatch(value):
            raise ValidationError(f"{name} does not match its pattern.")
    elif kind is int and not low <= value <= high:
        raise ValidationError(f"{name} must be between {low} and {high}.")


def output(body: Mapping[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 200, [(b"content-type", CONTENT_TYPE)], json.dumps(body, separators=(",", ":")).encode()


def error_response(error: OpenMwaaError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    code = LOGS_ERROR_CODES.get(error.code, error.code)
    body = json.dumps({"__type": code, "message": error.message}).encode()
    return (
        error.status,
        [
            (b"content-type", CONTENT_TYPE),
            (b"x-amzn-errortype", code.encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ],
        body,
    )
