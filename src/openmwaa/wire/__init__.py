"""The API's wire formats: MWAA rest-json (routes, shapes and validation from botocore's model,
serialization) and STS's query protocol (:mod:`openmwaa.wire.sts`).

Entry points: :class:`openmwaa.wire.model.MwaaWire` (``MwaaWire.load()``),
:func:`openmwaa.wire.error_response.serialize_error` and :mod:`openmwaa.wire.sts`.
"""
