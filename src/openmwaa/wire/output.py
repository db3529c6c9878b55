"""Write operation results as rest-json.

A result is a mapping keyed by model member names. ``None`` members are dropped, timestamps
(``datetime``, naive meaning UTC, or epoch seconds) become epoch-second JSON numbers, and an
empty result is ``{}``: botocore crashes on a literal ``null`` body. A key the model does not
define is a bug in the handler and raises ``ValueError`` (the pipeline answers 500) rather
than leaking an unreviewed field onto the wire.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

from openmwaa.wire.shapes import Shape


def _epoch_seconds(value: Any) -> int | float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        seconds = value.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    else:
        raise ValueError(f"not a timestamp: {type(value).__name__}")
    return int(seconds) if float(seconds).is_integer() else seconds


def to_wire(shape: Shape, value: Any) -> Any:
    """``value`` as the JSON that botocore's rest-json parser expects for ``shape``."""
    if shape.document:
        return value
    if shape.type == "structure":
        if not isinstance(value, Mapping):
            raise ValueError(f"{shape.name} must be a mapping, not {type(value).__name__}")
        out: dict[str, Any] = {}
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                raise ValueError(f"{name!r} is not a member of {shape.name}")
            if item is not None:
                out[member.wire_name] = to_wire(member.shape, item)
        return out
    if shape.type == "list":
        if not isinstance(value, list | tuple):
            raise ValueError(f"{shape.name} must be a list, not {type(value).__name__}")
        return [to_wire(shape.member, item) for item in value]
    if shape.type == "map":
        if not isinstance(value, Mapping):
            raise ValueError(f"{shape.name} must be a mapping, not {type(value).__name__}")
        return {str(k): to_wire(shape.value, v) for k, v in value.items()}
    if shape.type == "timestamp":
        return _epoch_seconds(value)
    if shape.type == "blob":
        return base64.b64encode(value).decode("ascii")
    return value


def serialize_structure(shape: Shape | None, result: Mapping[str, Any]) -> bytes:
    """Compact JSON, written by orjson: several times json's speed on large documents
    (InvokeRestApi's RestApiResponse: 90 kB for /dags?limit=100).

    orjson would write a NaN or an infinity as null where json refuses it; none reaches here:
    the handlers' numbers are counts and timestamps, and every document was parsed by a parser
    that refuses them (strict_json for requests, orjson for Airflow's answers). A document may
    also be an ``orjson.Fragment`` that ``strict_json.json_fragment`` validated: its bytes are
    written as they are (InvokeRestApi's answers; the json fallback never meets one, since the
    other members of that output are small integers).
    """
    body = to_wire(shape, result) if shape is not None else {}
    try:
        return orjson.dumps(body)
    except TypeError:  # what orjson does not write (an integer over 64 bits, a non-str key)
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
