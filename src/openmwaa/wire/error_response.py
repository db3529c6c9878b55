"""The one place an :class:`~openmwaa.errors.OpenMwaaError` becomes an HTTP response.

botocore's rest-json parser takes the error code from ``x-amzn-ErrorType`` (falling back to
``__type`` in the body), the message from ``message``/``Message`` and the modeled members
(``RestApiStatusCode``...) from the top level of the JSON body, so we send all of them.
"""

from __future__ import annotations

import json
import re

from openmwaa.errors import OpenMwaaError

_HEADER_UNSAFE = re.compile(r"[^\x21-\x7e]")


def serialize_error(error: OpenMwaaError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """``(status, headers, body)`` for ``error``; header names are lower-case, as ASGI expects."""
    body = dict(error.body())
    body["__type"] = error.code
    payload = json.dumps(body, separators=(",", ":"), default=str).encode("utf-8")
    safe_request_id = _HEADER_UNSAFE.sub("", request_id)[:128]
    headers = [
        (b"content-type", b"application/json"),
        (b"x-amzn-errortype", error.code.encode("ascii")),
        (b"x-amzn-requestid", safe_request_id.encode("ascii")),
    ]
    return error.status, headers, payload
