"""Request shapes fuzzed from botocore's model, for every MWAA operation: 4xx as modeled, never a 5xx.

For each operation a valid input is generated from its input shape (types, lengths, enums,
patterns, nesting), then broken in one way at a time: a wrong JSON type, one too many or too few
characters or elements, a number out of range, a value outside its enum or pattern, an unknown
member, a null element, a missing required member, deep nesting, a huge body, invalid UTF-8 or
JSON, a lone surrogate, bad query values. The requests are signed correctly (as a user with no
policy), so they pass SigV4 and reach validation; input that is still valid goes on to
authorization and is refused there, so nothing is ever created or changed. A broken input must
get ``ValidationException`` (400, or 413 when too large); a valid one in any content type,
``AccessDeniedException`` or ``ResourceNotFoundException``. The seed is fixed and the count
bounded, so a run is deterministic and takes a few seconds.
"""

from __future__ import annotations

import base64
import collections
import functools
import json
import random
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import botocore.session
import httpx
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from tests.api.conftest import ApiServer
from tests.api.sigv4_signer import Signing, amz_date, signed_request

SEED = 1010
VARIANTS = 10  # cases of each kind per operation (each kind that applies)
MAX_BODY = 6 * 1024 * 1024  # the API's body limit (MWAA's InvokeRestApi payload limit)
FUZZ_USER = "nobody"  # signed correctly, allowed nothing: valid input stops at authorization

VALIDATION = {(400, "ValidationException")}
TOO_LARGE = {(413, "ValidationException")}
STOPPED_LATER = {(403, "AccessDeniedException"), (404, "ResourceNotFoundException")}
#: Operations that change nothing: fuzzed as the admin, so their handlers run on the valid inputs.
READ_ONLY = {"GetEnvironment", "ListEnvironments", "ListTagsForResource"}
#: A valid input to a read-only operation: served, or an unknown resource, or a token it did not issue.
SERVED = {(200, ""), (404, "ResourceNotFoundException"), (400, "ValidationException")}


def _letters(rng: random.Random, low: int, high: int, alphabet: str = string.ascii_lowercase) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


#: A valid value for each patterned string shape of the model (the patterns are Java regexes).
SAMPLES: dict[str, Callable[[random.Random], str]] = {
    "AirflowVersion": lambda r: r.choice(["3.3.1", "3.2.1", "2.11.2", "2.10.3"]),
    "ConfigKey": lambda r: r.choice(["core", "webserver", "scheduler"]) + "." + _letters(r, 1, 20),
    "ConfigValue": lambda r: _letters(r, 1, 30, string.ascii_letters + string.digits + " !~{}"),
    "EnvironmentArn": lambda r: "arn:aws:airflow:us-east-1:123456789012:environment/fz" + _letters(r, 1, 12),
    "EnvironmentName": lambda r: "fz" + _letters(r, 0, 20, string.ascii_letters + string.digits + "-_"),
    "IamRoleArn": lambda r: "arn:aws:iam::123456789012:role/" + _letters(r, 1, 20),
    "IdentityCenterIdentityStoreId": lambda r: "d-" + _letters(r, 10, 10, "0123456789abcdef"),
    "IdentityCenterStartUrl": lambda r: "https://" + _letters(r, 1, 20) + ".awsapps.com/start",
    "KmsKey": lambda r: "-".join(_letters(r, n, n, "0123456789abcdef") for n in (8, 4, 4, 4, 12)),
    "RelativePath": lambda r: r.choice(["", "dags", "plugins.zip", "requirements.txt", "a/b/c.py"]),
    "S3BucketArn": lambda r: "arn:aws:s3:::" + _letters(r, 3, 30, string.ascii_lowercase + ".-"),
    "SecurityGroupId": lambda r: "sg-" + _letters(r, 1, 17, string.ascii_letters + string.digits),
    "SubnetId": lambda r: "subnet-" + _letters(r, 1, 17, string.ascii_letters + string.digits),
    "TagKey": lambda r: _letters(r, 1, 20, string.ascii_letters + "_.:/=+-@ é"),
    "TagValue": lambda r: _letters(r, 1, 40, string.ascii_letters + string.digits + "_.:/=+-@ ü"),
    "TeamNameString": lambda r: "t" + _letters(r, 2, 20, string.ascii_letters + string.digits + "_-"),
    "WeeklyMaintenanceWindowStart": lambda r: (
        r.choice(["MON", "TUE", "SUN"]) + r.choice([":03:30", ":23:00"])
    ),
}


@functools.cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("mwaa")


def _is_document(shape: Shape) -> bool:
    return bool(getattr(shape, "is_document_type", False))


class Generator:
    """Valid values for shapes of the model."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def value(self, shape: Shape, depth: int = 0) -> Any:
        rng, meta = self.rng, shape.metadata
        if _is_document(shape):
            return self.document(depth)
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            out = {}
            for name, member in shape.members.items():
                if name in shape.required_members or rng.random() < 0.5:
                    out[member.serialization.get("name", name)] = self.value(member, depth + 1)
            return out
        if kind == "list":
            low = meta.get("min", 0)
            count = rng.randint(low, max(low, min(meta.get("max", 3), 3)))
            return [self.value(shape.member, depth + 1) for _ in range(count)]
        if kind == "map":
            low = meta.get("min", 0)
            count = rng.randint(low, max(low, min(meta.get("max", 3), 3)))
            return {
                self.value(shape.key, depth + 1): self.value(shape.value, depth + 1) for _ in range(count)
            }
        if kind == "string":
            if shape.enum:
                return rng.choice(shape.enum)
            if "pattern" in meta:
                return SAMPLES[shape.name](rng)
            if shape.name.endswith("Token") and rng.random() < 0.7:
                return self.token(meta.get("max", 2048))
            low, high = meta.get("min", 0), min(meta.get("max", 40), 40)
            return _letters(rng, low, max(low, high), string.printable.strip() + " ")
        if kind in ("integer", "long"):
            return rng.randint(meta.get("min", 0), meta.get("max", 1000))
        if kind in ("double", "float"):
            return round(rng.uniform(-1e6, 1e6), 3)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "timestamp":
            return rng.randint(0, 2_000_000_000)
        raise AssertionError(f"no generator for {shape.name} ({kind})")

    def token(self, limit: int) -> str:
        """What a pagination token might decode to: base64 of JSON, deep JSON, or not JSON at all."""
        rng = self.rng
        inner = rng.choice(
            [
                json.dumps({"after": _letters(rng, 0, 10)}).encode(),
                json.dumps(self.document(1)).encode(),
                b"[" * (limit * 3 // 4 - rng.randrange(64)),  # deeper than Python's recursion limit
                bytes(rng.randrange(256) for _ in range(rng.randrange(64))),
            ]
        )
        token = base64.urlsafe_b64encode(inner).decode()
        return token[: limit - limit % 4]

    def document(self, depth: int) -> Any:
        """Any JSON value (InvokeRestApi's QueryParameters and Body)."""
        rng = self.rng
        choice = rng.randrange(6 if depth < 3 else 4)
        if choice == 0:
            return None if depth else {}
        if choice == 1:
            return rng.choice([True, False, 0, -1, 2**40, 1.5])
        if choice == 2:
            return _letters(rng, 0, 20, string.printable)
        if choice == 3:
            return {"k": "v"} if depth else {}
        if choice == 4:
            return [self.document(depth + 1) for _ in range(rng.randint(0, 3))]
        return {_letters(rng, 1, 8): self.document(depth + 1) for _ in range(rng.randint(0, 3))}


@dataclass
class Slot:
    """Where a value sits in an input: the containers along the way, and its shape."""

    path: tuple[Any, ...]
    shape: Shape


def slots(shape: Shape, value: Any, path: tuple[Any, ...] = ()) -> Iterator[Slot]:
    """Every value in ``value`` (structures, lists, maps, scalars), with its shape; documents whole."""
    yield Slot(path, shape)
    if _is_document(shape):
        return
    if shape.type_name == "structure" and isinstance(value, dict):
        assert isinstance(shape, StructureShape)
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if wire in value:
                yield from slots(member, value[wire], (*path, wire))
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from slots(shape.member, item, (*path, index))
    elif shape.type_name == "map" and isinstance(value, dict):
        for key in value:
            yield from slots(shape.value, value[key], (*path, key))


def set_at(root: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = root
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@dataclass
class Request:
    """A request in the making: where each top-level member travels, and raw overrides."""

    operation: OperationModel
    params: dict[str, Any]  # top-level members by wire name
    body_bytes: bytes | None = None  # replaces the JSON body
    extra_query: list[str] = field(default_factory=list)
    raw_labels: dict[str, str] = field(default_factory=dict)  # already percent-encoded labels
    content_type: str | None = "application/json"

    def location(self, wire_name: str) -> str:
        for name, member in self.operation.input_shape.members.items():
            if member.serialization.get("name", name) == wire_name:
                return str(member.serialization.get("location", "body"))
        return "body"

    def target(self) -> str:
        path = str(self.operation.http["requestUri"])
        query: list[str] = []
        for name, member in self.operation.input_shape.members.items():
            wire = member.serialization.get("name", name)
            location = member.serialization.get("location")
            if location == "uri":
                label = self.raw_labels.get(wire) or quote(str(self.params.get(wire, "")), safe="-_.~")
                path = path.replace("{" + wire + "}", label)
            elif location == "querystring" and wire in self.params:
                values = self.params[wire]
                for item in values if isinstance(values, list) else [values]:
                    query.append(f"{quote(wire, safe='')}={quote(_query_text(item), safe='-_.~')}")
        query.extend(self.extra_query)
        return path + ("?" + "&".join(query) if query else "")

    def body(self) -> bytes:
        if self.body_bytes is not None:
            return self.body_bytes
        body = {k: v for k, v in self.params.items() if self.location(k) == "body"}
        return json.dumps(body).encode() if body else b""


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Case:
    operation: str
    kind: str
    request: Request
    expected: set[tuple[int, str]]


class Mutator:
    """One way of breaking (or merely reshaping) a valid input, per method."""

    def __init__(self, rng: random.Random, generator: Generator) -> None:
        self.rng = rng
        self.gen = generator

    def valid(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        return Case(op.name, "valid", Request(op, params), STOPPED_LATER)

    def content_type(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        kind = self.rng.choice(
            [
                None,
                "text/plain",
                "application/xml",
                "multipart/form-data; boundary=x",
                "application/x-amz-json-1.1",
            ]
        )
        return Case(op.name, "other content type", Request(op, params, content_type=kind), STOPPED_LATER)

    def unknown_query(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        extra = [f"fuzz{self.rng.randrange(100)}=%00%20", "x-id=" + op.name, "=", "&&", "%E2%9C%93=%C3%A9"]
        return Case(op.name, "unmodeled query", Request(op, params, extra_query=extra), STOPPED_LATER)

    def _pick(
        self, op: OperationModel, params: dict[str, Any], accept: Callable[[Slot], bool]
    ) -> Slot | None:
        candidates = [s for s in slots(op.input_shape, params) if s.path and accept(s)]
        return self.rng.choice(candidates) if candidates else None

    def _top_location(self, op: OperationModel, slot: Slot) -> str:
        return Request(op, {}).location(slot.path[0])

    def wrong_type(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        slot = self._pick(op, params, lambda s: not _is_document(s.shape))
        if slot is None:
            return None
        location = self._top_location(op, slot)
        kind = slot.shape.type_name
        if location == "uri" or (location == "querystring" and kind not in ("integer", "long", "boolean")):
            return None  # text is the only type a path label or a string query value has
        if location == "querystring":
            bad: Any = self.rng.choice(["ten", "1.5", "0x10", "", " 3", "true" if kind != "boolean" else "1"])
        else:
            others = {
                "string": [5, 1.5, True, ["x"], {"a": "b"}],
                "integer": ["3", 1.5, True, [1], {"n": 1}],
                "long": ["3", 1.5, False, [1]],
                "double": ["1.0", True, [1.0], {}],
                "boolean": ["true", 1, 0, [], {}],
                "timestamp": ["2024-01-01T00:00:00Z", True, [], {}],
                "list": ["a", 1, {"a": 1}, True],
                "map": [["a"], "a", 1, True],
                "structure": [["a"], "a", 1, False],
            }[kind]
            bad = self.rng.choice(others)
        params = json.loads(json.dumps(params))
        set_at(params, slot.path, bad)
        return Case(op.name, "wrong type", Request(op, params), VALIDATION)

    def too_long(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        slot = self._pick(op, params, lambda s: "max" in s.shape.metadata and s.shape.type_name != "map")
        if slot is None:
            return None
        shape, high = slot.shape, slot.shape.metadata["max"]
        if shape.type_name == "string":
            bad: Any = "z" * (high + 1 + self.rng.randrange(3))
        elif shape.type_name == "list":
            bad = [self.gen.value(shape.member) for _ in range(high + 1)]
        else:  # integer maximum
            bad = high + self.rng.choice([1, 2, 1000, 2**31, 2**63])
        params = json.loads(json.dumps(params))
        set_at(params, slot.path, bad)
        return Case(op.name, "too long / too large", Request(op, params), VALIDATION)

    def too_many_map_entries(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        slot = self._pick(op, params, lambda s: s.shape.type_name == "map" and "max" in s.shape.metadata)
        if slot is None:
            return None
        value_shape = slot.shape.value
        bad = {f"key{chr(97 + i // 26)}{chr(97 + i % 26)}": self.gen.value(value_shape) for i in range(60)}
        params = json.loads(json.dumps(params))
        set_at(params, slot.path, bad)
        return Case(op.name, "too many map entries", Request(op, params), VALIDATION)

    def too_short(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        def applies(s: Slot) -> bool:
            low = s.shape.metadata.get("min")
            if low is None or self._top_location(op, s) == "uri":
                return False
            return low > 0 or s.shape.type_name in ("integer", "long")

        slot = self._pick(op, params, applies)
        if slot is None:
            return None
        shape, low = slot.shape, slot.shape.metadata["min"]
        if shape.type_name == "string":
            bad: Any = "a" * (low - 1)
        elif shape.type_name == "list":
            bad = [self.gen.value(shape.member) for _ in range(low - 1)]
        elif shape.type_name == "map":
            bad = {}
        else:
            bad = low - self.rng.choice([1, 2, 2**31, 2**64])
        params = json.loads(json.dumps(params))
        set_at(params, slot.path, bad)
        return Case(op.name, "too short / too small", Request(op, params), VALIDATION)

    def outside_enum(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        slot = self._pick(op, params, lambda s: bool(getattr(s.shape, "enum", None)))
        if slot is None:
            return None
        valid = slot.shape.enum
        bad = self.rng.choice([valid[0].lower(), valid[0] + " ", "", "TRACE", valid[0] + "\x00"])
        params = json.loads(json.dumps(params))
        set_at(params, slot.path, bad)
        return Case(op.name, "outside enum", Request(op, params), VALIDATION)

    def outside_pattern(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        slot = self._pick(op, params, lambda s: "pattern" in s.shape.metadata)
        if slot is None:
            return None
        value: Any = params
        for step in slot.path:
            value = value[step]
        position = self.rng.randrange(len(value) + 1) if value else 0
        bad = value[:position] + "\n" + value[position:]  # no model pattern matches a line feed
        params = json.loads(json.dumps(params))
        set_at(params, slot.path, bad)
        return Case(op.name, "outside pattern", Request(op, params), VALIDATION)

    def bad_label(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        labels = [n for n, m in op.input_shape.members.items() if m.serialization.get("location") == "uri"]
        if not labels:
            return None
        label = self.rng.choice(labels)
        raw = self.rng.choice(
            ["1abc", "a%20b", "%ff%fe", "a%2Fb", "x" * 1300, "%00", "a%0A", "%C0%AF", "%2E%2E"]
        )
        return Case(op.name, "bad path label", Request(op, params, raw_labels={label: raw}), VALIDATION)

    def unknown_member(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        def applies(s: Slot) -> bool:
            return s.shape.type_name == "structure" and not _is_document(s.shape)

        slot = self._pick(op, params, applies)
        name = self.rng.choice(["Fuzz", "name", "__proto__", "Tags ", "x" * 300, "é"])
        params = json.loads(json.dumps(params))
        if slot is None or self.rng.random() < 0.4:
            params[name] = self.rng.choice([1, "x", None, {"a": 1}])
            if params[name] is None:
                params[name] = 0
        else:
            value: Any = params
            for step in slot.path:
                value = value[step]
            value[name] = 1
        return Case(op.name, "unknown member", Request(op, params), VALIDATION)

    def null_element(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        def applies(s: Slot) -> bool:
            return s.shape.type_name in ("list", "map") and self._top_location(op, s) == "body"

        slot = self._pick(op, params, applies)
        if slot is None:
            return None
        params = json.loads(json.dumps(params))
        bad: Any = [None] if slot.shape.type_name == "list" else {"k": None}
        set_at(params, slot.path, bad)
        return Case(op.name, "null element", Request(op, params), VALIDATION)

    def missing_required(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        shape = op.input_shape
        required = [
            n for n in shape.required_members if shape.members[n].serialization.get("location") != "uri"
        ]
        nested = [
            s
            for s in slots(shape, params)
            if s.path
            and isinstance(s.shape, StructureShape)
            and s.shape.required_members
            and not _is_document(s.shape)
        ]
        params = json.loads(json.dumps(params))
        if nested and (not required or self.rng.random() < 0.5):
            slot = self.rng.choice(nested)
            value: Any = params
            for step in slot.path:
                value = value[step]
            value.pop(self.rng.choice(slot.shape.required_members), None)
        elif required:
            params.pop(self.rng.choice(required), None)
        else:
            return None
        return Case(op.name, "missing required member", Request(op, params), VALIDATION)

    def deep_nesting(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        depth = self.rng.choice([64, 500, 5000, 200_000])
        nested = "[" * depth + "]" * depth
        documents = [n for n, m in op.input_shape.members.items() if _is_document(m)]
        if documents and depth <= 500:
            # Any JSON value is a valid document: deep but parseable nesting is input like any other.
            body = {k: v for k, v in params.items() if Request(op, {}).location(k) == "body"}
            body[self.rng.choice(documents)] = json.loads(nested)
            return Case(
                op.name,
                "deep nesting (document)",
                Request(op, params, body_bytes=json.dumps(body).encode()),
                STOPPED_LATER,
            )
        body_bytes = b'{"Fuzz": ' + nested.encode() + b"}"
        expected = TOO_LARGE if len(body_bytes) > MAX_BODY else VALIDATION
        return Case(op.name, "deep nesting", Request(op, params, body_bytes=body_bytes), expected)

    def huge_body(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        over = self.rng.random() < 0.5
        size = MAX_BODY + 1 + self.rng.randrange(1024) if over else 2 * 1024 * 1024
        strings = [
            n
            for n, m in op.input_shape.members.items()
            if m.type_name == "string" and m.serialization.get("location") is None and "max" in m.metadata
        ]
        name = self.rng.choice(strings) if strings else "Fuzz"
        body = {k: v for k, v in params.items() if Request(op, {}).location(k) == "body"}
        body[name] = "h" * size
        return Case(
            op.name,
            "huge body",
            Request(op, params, body_bytes=json.dumps(body).encode()),
            TOO_LARGE if over else VALIDATION,
        )

    def invalid_utf8(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        body = Request(op, params).body() or b'{"Fuzz": "x"}'
        garbage = self.rng.choice(
            [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80", b"\xfe\xff"]
        )
        quote_at = body.find(b'"', 1)
        bad = body[: quote_at + 1] + garbage + body[quote_at + 1 :] if quote_at > 0 else garbage + body
        return Case(op.name, "invalid UTF-8", Request(op, params, body_bytes=bad), VALIDATION)

    def lone_surrogate(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        slot = self._pick(
            op, params, lambda s: s.shape.type_name == "string" and self._top_location(op, s) == "body"
        )
        if slot is None:
            return None
        params = json.loads(json.dumps(params))
        set_at(params, slot.path, "a\ud800b")
        return Case(op.name, "lone surrogate", Request(op, params), VALIDATION)

    def bad_json(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        body = Request(op, params).body() or b'{"a": 1}'
        bad = self.rng.choice(
            [
                body[:-1],
                body + b"}",
                body[:-1] + b",}",
                b"[" + body + b"]",
                b'{"a": NaN}',
                b'{"a": Infinity}',
                b'{"a": 1, "a": 2}',
                b"null",
                b'"text"',
                b"12",
                b"\xef\xbb\xbf" + body,
                body.replace(b'"', b"'"),
                b'{"a": 1e999999}',
                b'{"a": ' + b"9" * 5000 + b"}",  # more digits than Python converts to an int
            ]
        )
        return Case(op.name, "malformed JSON", Request(op, params, body_bytes=bad), VALIDATION)

    def bad_query(self, op: OperationModel, params: dict[str, Any]) -> Case | None:
        names = [
            m.serialization.get("name", n)
            for n, m in op.input_shape.members.items()
            if m.serialization.get("location") == "querystring"
        ]
        if not names:
            return None
        name = self.rng.choice(names)
        raw = self.rng.choice(["%zz", "%ff", "%C3%28", "a%", "99999999999999999999999"])
        shape = next(m for n, m in op.input_shape.members.items() if m.serialization.get("name", n) == name)
        if shape.type_name not in ("integer", "long") and raw == "99999999999999999999999":
            raw = "%ff"
        rest = {k: v for k, v in params.items() if k != name}
        return Case(op.name, "bad query value", Request(op, rest, extra_query=[f"{name}={raw}"]), VALIDATION)

    def kinds(self) -> list[Callable[[OperationModel, dict[str, Any]], Case | None]]:
        return [
            self.valid,
            self.content_type,
            self.unknown_query,
            self.wrong_type,
            self.too_long,
            self.too_many_map_entries,
            self.too_short,
            self.outside_enum,
            self.outside_pattern,
            self.bad_label,
            self.unknown_member,
            self.null_element,
            self.missing_required,
            self.deep_nesting,
            self.huge_body,
            self.invalid_utf8,
            self.lone_surrogate,
            self.bad_json,
            self.bad_query,
        ]


def valid_input(generator: Generator, op: OperationModel) -> dict[str, Any]:
    """A valid input; a list in the query string has at least one element (none cannot be sent)."""
    params: dict[str, Any] = generator.value(op.input_shape)
    for name, member in op.input_shape.members.items():
        in_query = member.serialization.get("location") == "querystring"
        if in_query and member.type_name == "list" and name in params and not params[name]:
            params[name] = [generator.value(member.member)]
    return params


def fuzz_cases(seed: int = SEED) -> Iterator[Case]:
    rng = random.Random(seed)
    generator = Generator(rng)
    mutator = Mutator(rng, generator)
    model = service_model()
    for name in model.operation_names:
        op = model.operation_model(name)
        for kind in mutator.kinds():
            for _ in range(VARIANTS if kind.__name__ != "huge_body" else 2):
                case = kind(op, valid_input(generator, op))
                if case is not None:
                    if name in READ_ONLY and case.expected == STOPPED_LATER:
                        case.expected = SERVED if "NextToken" in case.request.params else SERVED - VALIDATION
                    yield case


def _send(client: httpx.Client, api: ApiServer, case: Case) -> httpx.Response:
    key_id, secret = api.keys["admin" if case.operation in READ_ONLY else FUZZ_USER]
    body = case.request.body()
    headers = {"content-type": case.request.content_type} if body and case.request.content_type else {}
    signing = Signing(key_id=key_id, secret=secret, timestamp=amz_date(time.time()))
    method = case.request.operation.http["method"]
    url = api.endpoint_url + case.request.target()
    return client.send(signed_request(client, method, url, body, signing, headers=headers))


def test_every_pattern_in_the_model_has_a_sample() -> None:
    """The generator knows a valid value for every patterned string an operation takes."""
    model = service_model()
    patterned = {
        slot.shape.name
        for name in model.operation_names
        for slot in _all_slots(model.operation_model(name).input_shape)
        if "pattern" in slot.shape.metadata
    }
    assert patterned <= set(SAMPLES), patterned - set(SAMPLES)


def _all_slots(shape: Shape, seen: frozenset[str] = frozenset()) -> Iterator[Slot]:
    yield Slot((), shape)
    if shape.name in seen or _is_document(shape):
        return
    seen = seen | {shape.name}
    if isinstance(shape, StructureShape):
        for member in shape.members.values():
            yield from _all_slots(member, seen)
    elif shape.type_name == "list":
        yield from _all_slots(shape.member, seen)
    elif shape.type_name == "map":
        yield from _all_slots(shape.key, seen)
        yield from _all_slots(shape.value, seen)


def test_fuzzed_request_shapes_never_get_a_server_error(api: ApiServer) -> None:
    before = api.client().list_environments()["Environments"]
    wrong: list[str] = []
    seen: collections.Counter[str] = collections.Counter()
    per_operation: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    with httpx.Client(timeout=60) as client:
        for case in fuzz_cases():
            response = _send(client, api, case)
            outcome = (response.status_code, response.headers.get("x-amzn-ErrorType", ""))
            seen[case.kind] += 1
            per_operation[case.operation] += 1
            if outcome not in case.expected:
                target = case.request.target()
                wrong.append(
                    f"{case.operation} / {case.kind}: {target[:120]} {case.request.body()[:160]!r} "
                    f"-> {outcome} {response.text[:300]}"
                )
    elapsed = time.monotonic() - started
    total = sum(seen.values())
    print(
        f"\n{total} fuzzed requests over {len(per_operation)} operations in {elapsed:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(seen.items()))
    )
    assert not wrong, f"{len(wrong)} of {total} not answered as modeled:\n" + "\n".join(
        wrong[:: max(1, len(wrong) // 25)]
    )
    assert set(per_operation) == set(service_model().operation_names)
    # The server still serves, and nothing the fuzz sent changed anything.
    assert api.client().list_environments()["Environments"] == before


def test_a_next_token_of_deeply_nested_json_is_a_validation_error(api: ApiServer) -> None:
    """Found by the fuzz: the token decoder let json's RecursionError through (a 500)."""
    mwaa = api.client()
    token = base64.urlsafe_b64encode(b"[" * 1500).decode()
    try:
        mwaa.list_environments(NextToken=token)
    except mwaa.exceptions.ValidationException as exc:
        assert "NextToken" in str(exc)
    else:
        raise AssertionError("a token this service never issued was accepted")
