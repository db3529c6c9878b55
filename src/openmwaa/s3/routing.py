"""Which S3 operation a path-style request is, and the IAM action and resource it is authorized on."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from openmwaa.s3.errors import InvalidArgumentError, MethodNotAllowedError, NotImplementedS3Error, S3Error

MAX_QUERY_PARAMS = 64


@dataclass(frozen=True)
class S3Route:
    operation: str
    bucket: str | None
    key: str | None
    query: dict[str, str]

    @property
    def resource(self) -> str:
        if self.bucket is None:
            return "*"
        if self.key is None:
            return f"arn:aws:s3:::{self.bucket}"
        return f"arn:aws:s3:::{self.bucket}/{self.key}"


def parse_query(raw_query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw_query, keep_blank_values=True, max_num_fields=MAX_QUERY_PARAMS)
    except ValueError as exc:
        raise InvalidArgumentError("The query string has too many parameters.") from exc
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            raise InvalidArgumentError(f"Query parameter {name[:64]!r} is given more than once.")
        query[name] = value
    return query


def route(method: str, raw_path: str, raw_query: str, *, copy_source: bool) -> S3Route:
    """Path style: ``/`` (the service), ``/bucket``, ``/bucket/key``."""
    query = parse_query(raw_query)
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    bucket_part, _, key_part = path.partition("/")
    bucket = unquote(bucket_part) or None
    key = unquote(key_part, errors="strict") if key_part else None
    if bucket is None:
        if method == "GET":
            return S3Route("ListBuckets", None, None, query)
        raise MethodNotAllowedError("The specified method is not allowed against this resource.")
    if key is None:
        return S3Route(_bucket_operation(method, query), bucket, None, query)
    return S3Route(_object_operation(method, query, copy_source), bucket, key, query)


def is_upload(method: str, raw_path: str, raw_query: str, *, copy_source: bool) -> bool:
    """PutObject or UploadPart: requests whose body the handler streams to disk as it arrives."""
    if method != "PUT" or copy_source:
        return False
    try:
        operation = route(method, raw_path, raw_query, copy_source=copy_source).operation
    except (S3Error, UnicodeError):
        return False  # answered by the handler, with the body read as for any other request
    return operation in ("PutObject", "UploadPart")


_BUCKET_SUBRESOURCES = {
    ("GET", "versioning"): "GetBucketVersioning",
    ("PUT", "versioning"): "PutBucketVersioning",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeletePublicAccessBlock",
    ("GET", "location"): "GetBucketLocation",
    ("GET", "versions"): "ListObjectVersions",
    ("POST", "delete"): "DeleteObjects",
}
_UNSUPPORTED_SUBRESOURCES = {
    "acl",
    "policy",
    "cors",
    "lifecycle",
    "tagging",
    "website",
    "logging",
    "notification",
    "replication",
    "encryption",
    "ownershipControls",
    "object-lock",
    "accelerate",
    "requestPayment",
    "analytics",
    "metrics",
    "inventory",
    "intelligent-tiering",
    "retention",
    "legal-hold",
    "torrent",
    "restore",
    "select",
    "attributes",
}


def _unsupported(query: dict[str, str]) -> None:
    for name in query:
        if name in _UNSUPPORTED_SUBRESOURCES:
            raise NotImplementedS3Error(f"The ?{name} subresource is not implemented by openmwaa.")


def _bucket_operation(method: str, query: dict[str, str]) -> str:
    if "uploads" in query:
        raise NotImplementedS3Error("ListMultipartUploads is not implemented by openmwaa.")
    for (verb, name), operation in _BUCKET_SUBRESOURCES.items():
        if name in query and verb == method:
            return operation
    _unsupported(query)
    if any(name in query for _, name in _BUCKET_SUBRESOURCES):
        raise MethodNotAllowedError("The specified method is not allowed against this resource.")
    if method == "GET":
        if query.get("list-type") == "2":
            return "ListObjectsV2"
        raise NotImplementedS3Error("ListObjects (version 1) is not implemented; use ListObjectsV2.")
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
        method
    ) or _not_allowed()


def _object_operation(method: str, query: dict[str, str], copy_source: bool) -> str:
    _unsupported(query)
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if "uploadId" in query:
        if method == "PUT" and "partNumber" in query and not copy_source:
            return "UploadPart"
        operation = {
            "GET": "ListParts",
            "DELETE": "AbortMultipartUpload",
            "POST": "CompleteMultipartUpload",
        }.get(method)
        if operation is None or (method == "PUT" and copy_source):
            raise NotImplementedS3Error("UploadPartCopy is not implemented by openmwaa.")
        return operation
    if method == "PUT":
        return "CopyObject" if copy_source else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method) or _not_allowed()


def _not_allowed() -> str:
    raise MethodNotAllowedError("The specified method is not allowed against this resource.")


#: Operation -> IAM action (those with a version id use the ``...Version`` action, as in AWS).
ACTIONS = {
    "ListBuckets": "s3:ListAllMyBuckets",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
}
VERSIONED_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
}
