"""S3's XML: responses, request documents (parsed strictly and bounded) and errors."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from xml.sax.saxutils import escape

from openmwaa.errors import OpenMwaaError, PayloadTooLargeError
from openmwaa.s3.errors import MalformedXmlError, NoSuchKeyError, NoSuchVersionError, S3Error

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_DOCUMENT_BYTES = 1024 * 1024
XML_HEADERS = [(b"content-type", b"application/xml")]

#: Our shared error codes -> S3's names for them.
S3_ERROR_CODES = {
    "AccessDeniedException": "AccessDenied",
    "MissingAuthenticationTokenException": "AccessDenied",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "AuthorizationHeaderMalformed",
    "UnrecognizedClientException": "InvalidAccessKeyId",
    "ExpiredTokenException": "ExpiredToken",
    "ValidationException": "InvalidArgument",
    "ThrottlingException": "SlowDown",
    "UnknownOperationException": "NotImplemented",
    "ServiceUnavailableException": "ServiceUnavailable",
    "InternalServerException": "InternalError",
}


def timestamp(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def el(tag: str, value: object) -> str:
    """``<tag>value</tag>``; ``value`` is escaped unless it is already XML (a list of elements)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "".join(value)
    else:
        text = escape(str(value))
    return f"<{tag}>{text}</{tag}>"


def document(root: str, children: Iterable[str]) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">{"".join(children)}</{root}>'
    ).encode()


def parse(body: bytes) -> ET.Element:
    """A request document: bounded, no DTDs or entities, namespace stripped from tags."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLargeError(f"XML documents must not exceed {MAX_DOCUMENT_BYTES} bytes.")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedXmlError("Document type declarations are not accepted.")
    try:
        root = ET.fromstring(body)  # noqa: S314 - bounded, DTDs and entities refused above
    except ET.ParseError as exc:
        raise MalformedXmlError() from exc
    for node in root.iter():
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.split("}", 1)[1]
    return root


def error_response(
    error: OpenMwaaError, request_id: str, *, head: bool
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Any of our errors in S3's ``<Error>`` form (HEAD answers carry no body, as in S3)."""
    if isinstance(error, PayloadTooLargeError):
        code = "EntityTooLarge"
    else:
        code = S3_ERROR_CODES.get(error.code, error.code)
    headers = [(b"x-amz-request-id", request_id.encode()), (b"x-amzn-requestid", request_id.encode())]
    if isinstance(error, S3Error):
        headers += error.extra_headers
    if head or error.status == 304:
        return error.status, headers, b""
    extra = []
    if isinstance(error, NoSuchKeyError | NoSuchVersionError):
        extra.append(el("Key", error.key))
    if isinstance(error, NoSuchVersionError):
        extra.append(el("VersionId", error.version_id))
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
        + el("Code", code)
        + el("Message", error.message)
        + "".join(extra)
        + el("RequestId", request_id)
        + "</Error>"
    ).encode()
    return error.status, [*XML_HEADERS, *headers], body
