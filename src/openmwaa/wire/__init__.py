"""MWAA rest-json on the wire: routes, shapes and validation from botocore's model, serialization.

Entry points: :class:`openmwaa.wire.model.MwaaWire` (``MwaaWire.load()``) and
:func:`openmwaa.wire.error_response.serialize_error`.
"""
