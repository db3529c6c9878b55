"""MwaaWire: the MWAA rest-json contract, read from botocore's service model.

Everything the wire layer knows (routes, shapes, constraints) comes from
the ``mwaa`` model of the installed botocore, loaded when :meth:`MwaaWire.load` is called,
never at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openmwaa.errors import UnknownOperationError
from openmwaa.wire.output import serialize_structure
from openmwaa.wire.parsing import DEFAULT_MAX_BODY_BYTES, parse_request
from openmwaa.wire.routing import Route, RouteMatch, RouteTable
from openmwaa.wire.shapes import Shape, build_shapes

SERVICE_NAME = "mwaa"
_EMPTY_INPUT = Shape(name="EmptyInput", type="structure")


class MwaaWire:
    """Route, parse and validate requests and serialize results for every operation in the model."""

    def __init__(
        self,
        service_description: Mapping[str, Any],
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        """Build from a raw service description (the parsed ``service-2.json``)."""
        self._shapes = build_shapes(service_description["shapes"])
        self._max_body_bytes = max_body_bytes
        self._inputs: dict[str, Shape] = {}
        self._outputs: dict[str, Shape | None] = {}
        routes = []
        for name, operation in service_description["operations"].items():
            http = operation["http"]
            routes.append(Route.from_request_uri(name, http["method"], http["requestUri"]))
            input_ref = operation.get("input")
            output_ref = operation.get("output")
            self._inputs[name] = self._shapes[input_ref["shape"]] if input_ref else _EMPTY_INPUT
            self._outputs[name] = self._shapes[output_ref["shape"]] if output_ref else None
        self._routes = RouteTable(routes)
        self.operation_names: tuple[str, ...] = tuple(service_description["operations"])
        self.error_shapes: dict[str, Shape] = {
            name: shape
            for name, shape in self._shapes.items()
            if service_description["shapes"][name].get("exception", False)
        }

    @classmethod
    def load(cls, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> MwaaWire:
        """From the ``mwaa`` model bundled with the installed botocore."""
        import botocore.loaders

        loader = botocore.loaders.create_loader()
        description = loader.load_service_model(SERVICE_NAME, "service-2")
        return cls(description, max_body_bytes=max_body_bytes)

    def input_shape(self, operation: str) -> Shape:
        return self._inputs[operation]

    def route(self, method: str, raw_path: str) -> RouteMatch:
        """The operation for ``method`` + raw ``raw_path``; raises UnknownOperationError (404)."""
        return self._routes.route(method, raw_path)

    def parse_input(
        self,
        operation: str,
        path_params: Mapping[str, str],
        raw_query: str,
        body: bytes,
    ) -> dict[str, Any]:
        """Validated input keyed by member names; raises ValidationError / PayloadTooLargeError.

        Every body is parsed as JSON, whatever its content type (see :mod:`openmwaa.wire.parsing`).
        """
        shape = self._inputs.get(operation)
        if shape is None:
            raise UnknownOperationError(f"Operation {operation[:64]} is not in the model.")
        return parse_request(shape, path_params, raw_query, body, self._max_body_bytes)

    def serialize_output(self, operation: str, result: Mapping[str, Any]) -> bytes:
        """The 200 response body for ``result`` (keyed by model member names)."""
        return serialize_structure(self._outputs[operation], result)
