"""Route a request to an MWAA operation on method + raw path, from the model's ``requestUri``s.

The raw (still percent-encoded) path is split on ``/`` first and each label decoded after,
so an ARN label (``arn%3Aaws%3Aairflow%3A...%3Aenvironment%2Fmy-env``) stays one segment.

Matching is strict: literal segments compare exactly (case-sensitive), a label matches one
non-empty segment, and a trailing slash or an extra segment is a different path (it does
not match; botocore never sends one). A path no operation has, and a known path with a
method it does not take, both end in ``UnknownOperationError`` (404): the message tells the
two apart, but neither is a modeled error for botocore.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from openmwaa.errors import UnknownOperationError, ValidationError


@dataclass(frozen=True)
class RouteMatch:
    operation: str
    #: Label name (as in the ``requestUri``) -> percent-decoded value.
    path_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Segment:
    text: str
    is_label: bool = False
    greedy: bool = False


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    segments: tuple[_Segment, ...]

    @classmethod
    def from_request_uri(cls, operation: str, method: str, request_uri: str) -> Route:
        path = request_uri.partition("?")[0]  # a requestUri may carry constant query parameters
        segments = []
        for part in path.lstrip("/").split("/") if path != "/" else []:
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                greedy = name.endswith("+")
                segments.append(_Segment(name.rstrip("+"), is_label=True, greedy=greedy))
            else:
                segments.append(_Segment(part))
        return cls(operation, method.upper(), tuple(segments))

    def match(self, raw_segments: list[str]) -> dict[str, str] | None:
        """Raw label values by name when the path fits this route, else None."""
        labels: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.greedy:
                rest = raw_segments[index:]
                if not rest or not all(rest):
                    return None
                labels[segment.text] = "/".join(rest)
                return labels if index == len(self.segments) - 1 else None
            if index >= len(raw_segments):
                return None
            raw = raw_segments[index]
            if segment.is_label:
                if not raw:
                    return None
                labels[segment.text] = raw
            elif raw != segment.text:
                return None
        return labels if len(raw_segments) == len(self.segments) else None


def _decode_label(raw: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ValidationError("Path is not valid percent-encoded UTF-8.") from None


class RouteTable:
    def __init__(self, routes: Iterable[Route]) -> None:
        # Routes with more literal segments win over ones that would take the text as a label.
        self._routes = sorted(routes, key=lambda r: -sum(not s.is_label for s in r.segments))

    def route(self, method: str, raw_path: str) -> RouteMatch:
        if not raw_path.startswith("/"):
            raise UnknownOperationError("The request path must start with '/'.")
        raw_segments = raw_path[1:].split("/") if raw_path != "/" else []
        method = method.upper()
        path_known = False
        for route in self._routes:
            raw_labels = route.match(raw_segments)
            if raw_labels is None:
                continue
            if route.method != method:
                path_known = True
                continue
            return RouteMatch(route.operation, {k: _decode_label(v) for k, v in raw_labels.items()})
        if path_known:
            raise UnknownOperationError(f"No operation accepts method {method[:16]} on this path.")
        raise UnknownOperationError("No operation matches this request path.")
