"""Turn a routed rest-json request (path labels, query string, JSON body) into validated input.

Decisions (stricter than AWS where it is cheap to be):
- The body must be a JSON object (or empty, meaning ``{}``), UTF-8, at most ``max_body_bytes``;
  duplicate keys and ``NaN``/``Infinity`` are rejected because they make a body ambiguous.
- The ``Content-Type`` header is not enforced: botocore sends ``application/json`` and every
  body is parsed as JSON whatever it says.
- A body member the model does not define is rejected, naming it.
- Query parameters the model does not define are ignored (proxies and SDKs add their own);
  a modeled scalar parameter given twice is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from openmwaa.errors import PayloadTooLargeError, ValidationError
from openmwaa.strict_json import loads_strict
from openmwaa.wire.shapes import LOCATION_BODY, LOCATION_QUERY, LOCATION_URI, Member, Shape
from openmwaa.wire.validation import ValidationErrors, validate_members, wire_path

#: Matches MWAA's documented InvokeRestApi payload limit.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
_QUERY_INTEGER = re.compile(r"-?[0-9]{1,19}")


def decode_json_body(body: bytes, max_body_bytes: int) -> dict[str, Any]:
    """The body as a JSON object; ``{}`` when empty."""
    if len(body) > max_body_bytes:
        raise PayloadTooLargeError(f"Request body must be at most {max_body_bytes} bytes.")
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("Request body is not valid UTF-8.") from None
    try:
        decoded = loads_strict(text)
    except RecursionError:
        raise ValidationError("Request body is not valid JSON: nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError, as are our hooks' complaints
        raise ValidationError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise ValidationError("Request body must be a JSON object.")
    return decoded


def parse_query(raw_query: str) -> dict[str, list[str]]:
    """Split a raw query string into decoded values per key (``+`` is a literal plus, as botocore encodes)."""
    values: dict[str, list[str]] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        try:
            key = unquote(raw_key, errors="strict")
            value = unquote(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise ValidationError("Query string is not valid percent-encoded UTF-8.") from None
        values.setdefault(key, []).append(value)
    return values


def _query_scalar(shape: Shape, text: str, path: str, errors: ValidationErrors) -> Any:
    if shape.type in ("integer", "long"):
        if _QUERY_INTEGER.fullmatch(text) is None:
            errors.constraint(text, path, "Member must be an integer", sensitive=shape.sensitive)
            return None
        return int(text)
    if shape.type == "boolean":
        if text not in ("true", "false"):
            errors.constraint(text, path, "Member must be true or false", sensitive=shape.sensitive)
            return None
        return text == "true"
    if shape.type == "timestamp":
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            errors.constraint(text, path, "Member must be an ISO 8601 timestamp", sensitive=shape.sensitive)
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return text


def _query_member(member: Member, texts: list[str], errors: ValidationErrors) -> Any:
    path = wire_path("", member.name)
    if member.shape.type == "list":
        converted = [_query_scalar(member.shape.member, t, path, errors) for t in texts]
        return [c for c in converted if c is not None]
    if len(texts) > 1:
        errors.constraint(None, path, "Member must not be repeated in the query string")
        return None
    return _query_scalar(member.shape, texts[0], path, errors)


def parse_request(
    input_shape: Shape,
    path_params: Mapping[str, str],
    raw_query: str,
    body: bytes,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> dict[str, Any]:
    """Gather every member from where the model says it travels, then validate the whole input."""
    decoded_body = decode_json_body(body, max_body_bytes)
    query = parse_query(raw_query) if raw_query else {}
    errors = ValidationErrors()
    gathered: dict[str, Any] = {}
    for member in input_shape.members.values():
        if member.location == LOCATION_URI and member.wire_name in path_params:
            gathered[member.name] = path_params[member.wire_name]
        elif member.location == LOCATION_QUERY and member.wire_name in query:
            gathered[member.name] = _query_member(member, query[member.wire_name], errors)
        elif member.location == LOCATION_BODY and member.wire_name in decoded_body:
            gathered[member.name] = decoded_body[member.wire_name]
    body_names = {m.wire_name for m in input_shape.members.values() if m.location == LOCATION_BODY}
    for key in decoded_body:
        if key not in body_names:
            errors.add(f"Unknown member '{key[:256]}'")
    params = validate_members(input_shape, gathered, "", errors, input_shape.sensitive)
    if errors:
        raise ValidationError(errors.summary())
    return params
