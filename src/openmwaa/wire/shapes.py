"""A typed, immutable copy of the botocore service model's shapes.

botocore's ``Shape`` objects are untyped and resolve members lazily; the wire layer walks
shapes on every request, so we convert the model once, at construction time, into small
frozen dataclasses with the patterns already compiled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openmwaa.wire.patterns import compile_pattern

#: Where a structure member travels in a rest-json request.
LOCATION_BODY = "body"
LOCATION_URI = "uri"
LOCATION_QUERY = "querystring"


@dataclass(frozen=True, eq=False)
class Member:
    name: str
    shape: Shape
    location: str = LOCATION_BODY
    #: The name on the wire (query key, label name, JSON key).
    wire_name: str = ""


@dataclass(frozen=True, eq=False)
class Shape:
    name: str
    type: str
    min: int | None = None
    max: int | None = None
    pattern: str | None = None
    compiled: re.Pattern[str] | None = field(default=None, repr=False)
    enum: tuple[str, ...] = ()
    sensitive: bool = False
    document: bool = False
    required: frozenset[str] = frozenset()
    # Filled in after construction (shapes may refer to each other), hence mutable containers.
    members: dict[str, Member] = field(default_factory=dict)
    children: dict[str, Shape] = field(default_factory=dict)

    @property
    def member(self) -> Shape:
        """The element shape of a list."""
        return self.children["member"]

    @property
    def key(self) -> Shape:
        return self.children["key"]

    @property
    def value(self) -> Shape:
        return self.children["value"]


def build_shapes(shape_definitions: Mapping[str, Mapping[str, Any]]) -> dict[str, Shape]:
    """Convert the raw ``shapes`` section of a service-2.json into :class:`Shape` objects."""
    shapes: dict[str, Shape] = {}
    for name, raw in shape_definitions.items():
        pattern = raw.get("pattern")
        shapes[name] = Shape(
            name=name,
            type=str(raw["type"]),
            min=raw.get("min"),
            max=raw.get("max"),
            pattern=pattern,
            compiled=compile_pattern(pattern) if pattern is not None else None,
            enum=tuple(raw.get("enum", ())),
            sensitive=bool(raw.get("sensitive", False)),
            document=bool(raw.get("document", False)),
            required=frozenset(raw.get("required", ())),
        )
    for name, raw in shape_definitions.items():
        shape = shapes[name]
        for member_name, ref in raw.get("members", {}).items():
            location = ref.get("location", LOCATION_BODY)
            shape.members[member_name] = Member(
                name=member_name,
                shape=shapes[ref["shape"]],
                location=location,
                wire_name=ref.get("locationName", member_name),
            )
        for child in ("member", "key", "value"):
            if child in raw:
                shape.children[child] = shapes[raw[child]["shape"]]
    return shapes
