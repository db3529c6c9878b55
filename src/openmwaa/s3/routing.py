"""Which S3 operation a path-style request is, and the IAM action and resource it is authorized on."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from openmwaa.s3.errors import InvalidArgumentError, MethodNotAllowedError, NotImplementedS3Error, S3Error
from openmwaa.s3.names import is_bucket_name

MAX_QUERY_PARAMS = 64
_VIRTUAL_SUFFIX = ".localhost"


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


def virtual_host_bucket(host: str | None) -> str | None:
    """The bucket a virtual-host style request names: ``<bucket>.localhost[:port]`` (None: path style).

    Only ``localhost`` names: they need no DNS set up (browsers, curl and systemd-resolved resolve
    every ``*.localhost`` to the loopback address), and never clash with the API's own host name.
    """
    if not host:
        return None
    name = host.strip().lower()
    if not name.startswith("["):  # an IPv6 literal is never a bucket host
        name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.rstrip(".")
    if not name.endswith(_VIRTUAL_SUFFIX):
        return None
    bucket = name[: -len(_VIRTUAL_SUFFIX)]
    return bucket if is_bucket_name(bucket) else None


def route(
    method: str, raw_path: str, raw_query: str, *, copy_source: bool, host: str | None = None
) -> S3Route:
    """Path style: ``/`` (the service), ``/bucket``, ``/bucket/key``; virtual-host style:
    ``bucket.localhost`` with ``/`` or ``/key``."""
    query = parse_query(raw_query)
    path = raw_path[1:] if raw_path.startswith("/") else raw_path
    virtual = virtual_host_bucket(host)
    if virtual is not None:
        path = f"{virtual}/{path}"
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


def is_upload(
    method: str, raw_path: str, raw_query: str, *, copy_source: bool, host: str | None = None
) -> bool:
    """PutObject or UploadPart: requests whose body the handler streams to disk as it arrives."""
    if method != "PUT" or copy_source:
        return False
    try:
        operation = route(method, raw_path, raw_query, copy_source=copy_source, host=host).operation
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
        list_type = query.get("list-type")
        if list_type not in (None, "2"):
            raise InvalidArgumentError("list-type must be 2 (ListObjectsV2), or absent (ListObjects).")
        return "ListObjectsV2" if list_type == "2" else "ListObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
        method
    ) or _not_allowed()


def _object_operation(method: str, query: dict[str, str], copy_source: bool) -> str:
    _unsupported(query)
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if "uploadId" in query:
        if method == "PUT" and "partNumber" in query:
            return "UploadPartCopy" if copy_source else "UploadPart"
        operation = {
            "GET": "ListParts",
            "DELETE": "AbortMultipartUpload",
            "POST": "CompleteMultipartUpload",
        }.get(method)
        return operation or _not_allowed()
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
    "ListObjects": "s3:ListBucket",
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
    "UploadPartCopy": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
}
VERSIONED_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
}
