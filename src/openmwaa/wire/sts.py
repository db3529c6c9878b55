"""The STS wire format (AWS query protocol): form-encoded parameters in, XML out.

Responses follow botocore's ``sts`` model: ``<{Action}Response>`` with the output members
inside ``<{Action}Result>`` and ``<ResponseMetadata><RequestId>``; errors are
``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.
STS names its errors differently from rest-json services; ``STS_ERROR_CODES`` maps ours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from openmwaa.errors import OpenMwaaError, PayloadTooLargeError, ValidationError

#: ``(status, headers, body)``, as :func:`openmwaa.wire.error_response.serialize_error` answers.
WireResponse = tuple[int, list[tuple[bytes, bytes]], bytes]

XML_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
API_VERSION = "2011-06-15"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_PARAMS_BYTES = 64 * 1024
MAX_PARAMS = 100

#: Our error codes -> the codes STS answers with (botocore maps exceptions by these).
STS_ERROR_CODES = {
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "ExpiredTokenException": "ExpiredToken",
    "AccessDeniedException": "AccessDenied",
    "ValidationException": "ValidationError",
    "ThrottlingException": "Throttling",
    "UnknownOperationException": "InvalidAction",
    "ServiceUnavailableException": "ServiceUnavailable",
    "InternalServerException": "InternalFailure",
}


def parse_params(source: bytes) -> dict[str, str]:
    """The form-encoded parameters of ``source`` (a POST body); repeated names are rejected."""
    if len(source) > MAX_PARAMS_BYTES:
        raise PayloadTooLargeError(f"Request parameters must not exceed {MAX_PARAMS_BYTES} bytes")
    try:
        text = source.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_PARAMS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("Request parameters are not valid form-encoded UTF-8") from exc
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise ValidationError(f"Parameter {key!r} is given more than once")
        params[key] = value
    return params


def result_response(action: str, result: Mapping[str, Any], request_id: str) -> WireResponse:
    body = (
        f'<{action}Response xmlns="{XML_NAMESPACE}">'
        f"<{action}Result>{_members(result)}</{action}Result>"
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return _xml(200, body)


def error_response(error: OpenMwaaError, request_id: str) -> WireResponse:
    """Any of our errors as an STS ``ErrorResponse`` (same HTTP status as elsewhere)."""
    code = STS_ERROR_CODES.get(error.code, error.code)
    fault = "Sender" if error.sender_fault else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{XML_NAMESPACE}">'
        f"<Error><Type>{fault}</Type><Code>{escape(code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{escape(request_id)}</RequestId>"
        "</ErrorResponse>"
    )
    return _xml(error.status, body)


def _members(members: Mapping[str, Any]) -> str:
    parts = []
    for name, value in members.items():
        if value is None:
            continue
        parts.append(f"<{name}>{_value(value)}</{name}>")
    return "".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, Mapping):
        return _members(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml(status: int, body: str) -> WireResponse:
    return status, [(b"content-type", b"text/xml")], body.encode("utf-8")
