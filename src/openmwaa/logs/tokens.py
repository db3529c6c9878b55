"""Pagination tokens: opaque, signed, bound to what they page through.

A token is ``<payload>.<signature>``, both base64url; the payload is a small JSON object. A
token that was not made here, was altered, or belongs to another query is refused with
InvalidParameterException; no part of a token is ever used as a path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

from openmwaa.errors import ValidationError

MAX_TOKEN: Final = 2048


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the token key must be at least 32 bytes")
        self._key = key

    def issue(self, payload: Mapping[str, Any]) -> str:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def open(self, token: str, fields: Mapping[str, type]) -> dict[str, Any]:
        """The payload of ``token``, which must have exactly ``fields`` with those types."""
        invalid = ValidationError("The specified nextToken is invalid.")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN or token.count(".") != 1:
            raise invalid
        body_text, signature_text = token.split(".")
        try:
            body = _unb64(body_text)
            signature = _unb64(signature_text)
        except (binascii.Error, ValueError) as exc:
            raise invalid from exc
        if not hmac.compare_digest(signature, self._sign(body)):
            raise invalid
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise invalid from exc
        if not isinstance(payload, dict) or set(payload) != set(fields):
            raise invalid
        for name, kind in fields.items():
            value = payload[name]
            if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
                raise invalid
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                raise invalid
        return payload

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, b"openmwaa-logs-token\x00" + body, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not all(c.isalnum() or c in "-_" for c in text) or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
