"""The S3 service on the pipeline: route, authorize (``s3:*`` by the same IAM engine), run, answer.

Authentication already happened (SigV4 scoped to ``s3``); errors are S3Errors or shared ones,
serialized by :func:`openmwaa.s3.xml.error_response`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import shutil
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

from anyio.to_thread import run_sync

from openmwaa.pipeline.authorization import authorize
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.response import Response
from openmwaa.s3.body import Received, read_upload, receive_upload
from openmwaa.s3.errors import (
    EntityTooLargeError,
    InvalidArgumentError,
    InvalidRangeError,
    InvalidRequestError,
    MalformedXmlError,
    NoSuchKeyError,
    NotImplementedS3Error,
    NotModifiedError,
    PreconditionFailedError,
    S3Error,
)
from openmwaa.s3.multipart import MultipartUploads, Part
from openmwaa.s3.routing import ACTIONS, VERSIONED_ACTIONS, S3Route, route
from openmwaa.s3.store import BucketStore, ObjectMeta, Version
from openmwaa.s3.xml import NAMESPACE, XML_HEADERS, document, el, http_date, parse, timestamp

MAX_KEYS = 1000
MAX_DELETE_KEYS = 1000
READ_BLOCK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_META_NAME = re.compile(r"x-amz-meta-[a-z0-9_.-]{1,128}")
MAX_USER_METADATA_BYTES = 2048
#: S3's own limit for one PutObject, one part and one CopyObject.
DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024**3

Conditions = Callable[[RequestContext], Mapping[str, Any]]


class S3Service:
    def __init__(
        self,
        store: BucketStore,
        authorizer: Authorizer,
        conditions: Conditions,
        *,
        region: str,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    ) -> None:
        self._store = store
        #: The largest PutObject body or part (S3: 5 GiB); larger ones are EntityTooLarge.
        self._max_upload = max_upload_bytes
        self._authorizer = authorizer
        self._conditions = conditions
        self._region = region
        self._uploads = MultipartUploads(store)

    async def __call__(self, ctx: RequestContext) -> Response:
        r = route(
            ctx.method,
            ctx.raw_path,
            ctx.raw_query,
            copy_source=ctx.header("x-amz-copy-source") is not None,
            host=ctx.header("host"),
        )
        ctx.operation = r.operation
        handler = getattr(self, "_" + r.operation)
        if r.operation not in ("DeleteObjects", "CopyObject", "UploadPartCopy"):
            self._authorize(ctx, r, ACTIONS[r.operation])
        response: Response = await handler(ctx, r)
        response.headers.append((b"x-amz-request-id", ctx.request_id.encode()))
        return response

    def _authorize(
        self, ctx: RequestContext, r: S3Route, action: str, *, resource: str | None = None
    ) -> None:
        keys = dict(self._conditions(ctx))
        version_id = r.query.get("versionId")
        if version_id is not None and action in VERSIONED_ACTIONS:
            action = VERSIONED_ACTIONS[action]
            keys["s3:VersionId"] = version_id
        if r.operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
            keys["s3:prefix"] = r.query.get("prefix", "")
            if "delimiter" in r.query:
                keys["s3:delimiter"] = r.query["delimiter"]
            keys["s3:max-keys"] = r.query.get("max-keys", str(MAX_KEYS))
        authorize(self._authorizer, ctx, action, resource or r.resource, keys)

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await run_sync(functools.partial(func, *args))

    # Buckets -------------------------------------------------------------------------------

    async def _ListBuckets(self, ctx: RequestContext, r: S3Route) -> Response:
        buckets = await self._run(self._store.list_buckets)
        owner = el(
            "Owner",
            [el("ID", ctx.principal.account_id if ctx.principal else ""), el("DisplayName", "openmwaa")],
        )
        items = [
            el("Bucket", [el("Name", b.name), el("CreationDate", timestamp(b.created))]) for b in buckets
        ]
        return _xml(document("ListAllMyBucketsResult", [owner, el("Buckets", items)]))

    async def _CreateBucket(self, ctx: RequestContext, r: S3Route) -> Response:
        assert r.bucket is not None
        if ctx.body:
            root = parse(ctx.body)
            location = root.findtext("LocationConstraint")
            if root.tag != "CreateBucketConfiguration" or (location and location != self._region):
                raise InvalidArgumentError(
                    f"This endpoint serves {self._region}; the LocationConstraint must match."
                )
        await self._run(self._store.create_bucket, r.bucket)
        return Response(200, headers=[(b"location", f"/{r.bucket}".encode())])

    async def _HeadBucket(self, ctx: RequestContext, r: S3Route) -> Response:
        await self._run(self._store.head_bucket, r.bucket)
        return Response(200, headers=[(b"x-amz-bucket-region", self._region.encode())])

    async def _DeleteBucket(self, ctx: RequestContext, r: S3Route) -> Response:
        await self._run(self._store.delete_bucket, r.bucket)
        return Response(204)

    async def _GetBucketLocation(self, ctx: RequestContext, r: S3Route) -> Response:
        await self._run(self._store.head_bucket, r.bucket)
        # us-east-1 is written as an empty constraint, as S3 does.
        region = self._region if self._region != "us-east-1" else ""
        root = f'<LocationConstraint xmlns="{NAMESPACE}">{region}</LocationConstraint>'
        return _xml(b'<?xml version="1.0" encoding="UTF-8"?>\n' + root.encode())

    async def _GetBucketVersioning(self, ctx: RequestContext, r: S3Route) -> Response:
        bucket = await self._run(self._store.head_bucket, r.bucket)
        children = [el("Status", bucket.versioning)] if bucket.versioning else []
        return _xml(document("VersioningConfiguration", children))

    async def _PutBucketVersioning(self, ctx: RequestContext, r: S3Route) -> Response:
        root = parse(ctx.body)
        status = root.findtext("Status")
        if root.tag != "VersioningConfiguration" or status is None:
            raise MalformedXmlError()
        if root.findtext("MfaDelete") == "Enabled":
            raise InvalidArgumentError("MFA delete is not supported.")
        await self._run(self._store.set_versioning, r.bucket, status)
        return Response(200)

    async def _GetPublicAccessBlock(self, ctx: RequestContext, r: S3Route) -> Response:
        config = await self._run(self._store.public_access_block, r.bucket)
        if config is None:
            raise _NoSuchPublicAccessBlock("The public access block configuration was not found")
        return _xml(document("PublicAccessBlockConfiguration", [el(k, v) for k, v in config.items()]))

    async def _PutPublicAccessBlock(self, ctx: RequestContext, r: S3Route) -> Response:
        root = parse(ctx.body)
        if root.tag != "PublicAccessBlockConfiguration":
            raise MalformedXmlError()
        config: dict[str, bool] = {}
        for name in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"):
            value = (root.findtext(name) or "false").strip().lower()
            if value not in ("true", "false"):
                raise MalformedXmlError()
            config[name] = value == "true"
        await self._run(self._store.set_public_access_block, r.bucket, config)
        return Response(200)

    async def _DeletePublicAccessBlock(self, ctx: RequestContext, r: S3Route) -> Response:
        await self._run(self._store.set_public_access_block, r.bucket, None)
        return Response(204)

    # Listing -------------------------------------------------------------------------------

    async def _list_page(self, r: S3Route, after: str, max_keys: int) -> _Page:
        """One page of current objects after ``after``, keys under a delimiter rolled up."""
        q = r.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        encode = q.get("encoding-type") == "url"
        bucket = r.bucket or ""
        versions = await self._run(lambda: list(self._store.list_current(bucket, prefix)))
        page = _Page()
        seen_prefixes: set[str] = set()
        for version in versions:
            if after and version.key.encode() <= after.encode():
                continue
            common = _common_prefix(version.key, prefix, delimiter)
            if common is not None and common in seen_prefixes:
                continue
            if page.count >= max_keys:
                page.truncated = True
                break
            if common is not None:
                seen_prefixes.add(common)
                page.prefixes.append(el("CommonPrefixes", [el("Prefix", _enc(common, encode))]))
                page.last, page.last_is_prefix = common, True
            else:
                page.contents.append(
                    el(
                        "Contents",
                        [
                            el("Key", _enc(version.key, encode)),
                            el("LastModified", timestamp(version.last_modified)),
                            el("ETag", version.etag),
                            el("Size", version.size),
                            el("StorageClass", "STANDARD"),
                        ],
                    )
                )
                page.last, page.last_is_prefix = version.key, False
        return page

    async def _ListObjectsV2(self, ctx: RequestContext, r: S3Route) -> Response:
        q = r.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = _max_keys(q)
        token = q.get("continuation-token")
        after = _decode_token(token) if token is not None else q.get("start-after", "")
        encode = q.get("encoding-type") == "url"
        page = await self._list_page(r, after, max_keys)
        # A rolled-up prefix continues past every key under it.
        last = page.last + "\U0010ffff" if page.last is not None and page.last_is_prefix else page.last
        children = [
            el("IsTruncated", page.truncated),
            *page.contents,
            el("Name", r.bucket),
            el("Prefix", _enc(prefix, encode)),
            *([el("Delimiter", _enc(delimiter, encode))] if delimiter else []),
            el("MaxKeys", max_keys),
            *page.prefixes,
            el("KeyCount", page.count),
            *([el("ContinuationToken", token)] if token is not None else []),
            *([el("NextContinuationToken", _encode_token(last))] if page.truncated and last else []),
            *([el("StartAfter", _enc(q["start-after"], encode))] if "start-after" in q else []),
            *([el("EncodingType", "url")] if encode else []),
        ]
        return _xml(document("ListBucketResult", children))

    async def _ListObjects(self, ctx: RequestContext, r: S3Route) -> Response:
        """Version 1: ``marker`` pages (keys after it); ``NextMarker`` when a delimiter is given,
        else clients continue from the last key, as with S3."""
        q = r.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = _max_keys(q)
        marker = q.get("marker", "")
        encode = q.get("encoding-type") == "url"
        # A marker that is a rolled-up prefix (a previous page's NextMarker) skips all keys under it.
        after = marker + "\U0010ffff" if delimiter and marker.endswith(delimiter) else marker
        page = await self._list_page(r, after, max_keys)
        next_marker = page.truncated and delimiter and page.last is not None
        children = [
            el("IsTruncated", page.truncated),
            el("Marker", _enc(marker, encode)),
            *([el("NextMarker", _enc(page.last or "", encode))] if next_marker else []),
            *page.contents,
            el("Name", r.bucket),
            el("Prefix", _enc(prefix, encode)),
            *([el("Delimiter", _enc(delimiter, encode))] if delimiter else []),
            el("MaxKeys", max_keys),
            *page.prefixes,
            *([el("EncodingType", "url")] if encode else []),
        ]
        return _xml(document("ListBucketResult", children))

    async def _ListObjectVersions(self, ctx: RequestContext, r: S3Route) -> Response:
        q = r.query
        prefix = q.get("prefix", "")
        max_keys = _max_keys(q)
        key_marker = q.get("key-marker", "")
        version_marker = q.get("version-id-marker")
        versions: list[Version] = await self._run(self._store.list_versions, r.bucket, prefix)
        if key_marker:
            versions = versions[_after_marker(versions, key_marker, version_marker) :]
        page, rest = versions[:max_keys], versions[max_keys:]
        items = []
        for v in page:
            common = [
                el("Key", v.key),
                el("VersionId", v.version_id),
                el("IsLatest", v.is_latest),
                el("LastModified", timestamp(v.last_modified)),
            ]
            if v.delete_marker:
                items.append(el("DeleteMarker", common))
            else:
                items.append(
                    el(
                        "Version",
                        [*common, el("ETag", v.etag), el("Size", v.size), el("StorageClass", "STANDARD")],
                    )
                )
        children = [
            el("IsTruncated", bool(rest)),
            *(
                [el("NextKeyMarker", page[-1].key), el("NextVersionIdMarker", page[-1].version_id)]
                if rest
                else []
            ),
            el("KeyMarker", key_marker),
            el("VersionIdMarker", version_marker or ""),
            *items,
            el("Name", r.bucket),
            el("Prefix", prefix),
            el("MaxKeys", max_keys),
        ]
        return _xml(document("ListVersionsResult", children))

    # Objects -------------------------------------------------------------------------------

    async def _PutObject(self, ctx: RequestContext, r: S3Route) -> Response:
        user_metadata = _user_metadata(ctx)
        await self._run(self._check_destination, r.bucket, r.key)
        received, path = await self._receive(ctx)
        try:
            meta = ObjectMeta(
                content_type=ctx.header("content-type") or "binary/octet-stream",
                user_metadata=user_metadata,
                checksums=received.checksums,
            )
            version = await self._run(self._store.put, r.bucket, r.key, path, meta, received.etag)
        finally:
            path.unlink(missing_ok=True)
        headers = [(b"etag", received.etag.encode()), *_version_header(version)]
        headers += [(f"x-amz-checksum-{k}".encode(), v.encode()) for k, v in received.checksums.items()]
        return Response(200, headers=headers)

    def _check_destination(self, bucket: str, key: str) -> None:
        """Refuse a missing bucket or a bad key before a byte of the body is read."""
        self._store.head_bucket(bucket)
        self._store.object_path(bucket, key)

    async def _receive(self, ctx: RequestContext) -> tuple[Received, Path]:
        """The request's body, verified, in a temporary file (removed again if anything fails)."""
        path, handle = await self._run(self._store.temp_file)
        try:
            with handle:
                received = await receive_upload(ctx, handle, max_bytes=self._max_upload)
                await self._run(_flush, handle)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return received, path

    def _copy(self, bucket: str, key: str, source: BinaryIO, meta: ObjectMeta, etag: str) -> Version:
        """A new current version of ``key`` with the bytes of ``source`` (copied file to file)."""
        self._check_destination(bucket, key)
        path, handle = self._store.temp_file()
        try:
            with handle:
                shutil.copyfileobj(source, handle, READ_BLOCK)
                _flush(handle)
            return self._store.put(bucket, key, path, meta, etag)
        finally:
            path.unlink(missing_ok=True)

    async def _open_copy_source(
        self, ctx: RequestContext, r: S3Route
    ) -> tuple[Version, BinaryIO, str | None, str]:
        """``x-amz-copy-source`` (``bucket/key[?versionId=v]``), authorized for reading, opened:
        the version, its bytes, the version id asked for and ``bucket/key``."""
        source = unquote(ctx.header("x-amz-copy-source") or "")
        source_path, _, source_query = source.lstrip("/").partition("?")
        source_bucket, _, source_key = source_path.partition("/")
        source_version = None
        if source_query:
            name, _, value = source_query.partition("=")
            if name != "versionId" or not value:
                raise InvalidArgumentError("x-amz-copy-source may only carry a versionId.")
            source_version = value
        if not source_bucket or not source_key:
            raise InvalidArgumentError("x-amz-copy-source must be bucket/key.")
        source_action = "s3:GetObjectVersion" if source_version else "s3:GetObject"
        self._authorize(ctx, r, source_action, resource=f"arn:aws:s3:::{source_bucket}/{source_key}")
        self._authorize(ctx, r, "s3:PutObject")
        version, handle = await self._run(self._store.get, source_bucket, source_key, source_version)
        if handle is None:
            raise NoSuchKeyError(source_key)
        return version, handle, source_version, f"{source_bucket}/{source_key}"

    async def _CopyObject(self, ctx: RequestContext, r: S3Route) -> Response:
        version, handle, source_version, source = await self._open_copy_source(ctx, r)
        with handle:
            directive = ctx.header("x-amz-metadata-directive") or "COPY"
            if directive == "REPLACE":
                meta = ObjectMeta(
                    ctx.header("content-type") or "binary/octet-stream",
                    _user_metadata(ctx),
                    version.meta.checksums,
                )
            elif directive == "COPY":
                meta = version.meta
                if source == f"{r.bucket}/{r.key}" and source_version is None:
                    raise InvalidRequestError(
                        "This copy request is illegal because it is trying to copy an object to itself "
                        "without changing the object's metadata."
                    )
            else:
                raise InvalidArgumentError("x-amz-metadata-directive must be COPY or REPLACE.")
            if version.size > self._max_upload:
                raise EntityTooLargeError(
                    f"The source object is larger than the {self._max_upload} bytes a copy may be."
                )
            new = await self._run(self._copy, r.bucket, r.key, handle, meta, version.etag)
        body = document(
            "CopyObjectResult", [el("LastModified", timestamp(new.last_modified)), el("ETag", new.etag)]
        )
        headers = [*XML_HEADERS, *_version_header(new)]
        if source_version:
            headers.append((b"x-amz-copy-source-version-id", source_version.encode()))
        return Response(200, body, headers)

    async def _UploadPartCopy(self, ctx: RequestContext, r: S3Route) -> Response:
        number = _part_number(r)
        upload_id = r.query["uploadId"]
        assert r.bucket is not None and r.key is not None
        await self._run(self._uploads.check_part, upload_id, r.bucket, r.key, number)
        version, handle, source_version, _ = await self._open_copy_source(ctx, r)
        with handle:
            ranged = ctx.header("x-amz-copy-source-range")
            start, length = (0, version.size) if ranged is None else _copy_range(ranged, version.size)
            if length > self._max_upload:
                raise EntityTooLargeError(f"A part may be at most {self._max_upload} bytes.")
            path, etag = await self._run(self._copy_part, handle, start, length)
        try:
            await run_sync(
                functools.partial(
                    self._uploads.upload_part, upload_id, r.bucket, r.key, number, source=path, etag=etag
                )
            )
        finally:
            path.unlink(missing_ok=True)
        body = document("CopyPartResult", [el("LastModified", timestamp(time.time())), el("ETag", etag)])
        headers = list(XML_HEADERS)
        if source_version:
            headers.append((b"x-amz-copy-source-version-id", source_version.encode()))
        return Response(200, body, headers)

    def _copy_part(self, source: BinaryIO, start: int, length: int) -> tuple[Path, str]:
        """``length`` bytes of ``source`` from ``start`` into a temporary file, and their ETag."""
        path, handle = self._store.temp_file()
        md5 = hashlib.md5(usedforsecurity=False)
        try:
            with handle:
                source.seek(start)
                left = length
                while left > 0:
                    block = source.read(min(READ_BLOCK, left))
                    if not block:
                        raise InvalidRequestError("The copy source changed while it was being read.")
                    md5.update(block)
                    handle.write(block)
                    left -= len(block)
                _flush(handle)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, f'"{md5.hexdigest()}"'

    async def _GetObject(self, ctx: RequestContext, r: S3Route) -> Response:
        return await self._read(ctx, r, head=False)

    async def _HeadObject(self, ctx: RequestContext, r: S3Route) -> Response:
        return await self._read(ctx, r, head=True)

    async def _read(self, ctx: RequestContext, r: S3Route, *, head: bool) -> Response:
        version_id = r.query.get("versionId")
        version, handle = await self._run(self._store.get, r.bucket, r.key, version_id)
        if handle is None:  # a delete marker
            headers = [(b"x-amz-delete-marker", b"true"), (b"x-amz-version-id", version.version_id.encode())]
            if version_id is None:
                error: S3Error = NoSuchKeyError(r.key or "")
            else:
                error = _MethodNotAllowedMarker("The specified method is not allowed against this resource.")
            error.extra_headers = headers
            raise error
        try:
            _check_preconditions(ctx, version)
            start, length, status = 0, version.size, 200
            headers = [
                (b"etag", version.etag.encode()),
                (b"last-modified", http_date(version.last_modified).encode()),
                (b"content-type", version.meta.content_type.encode("latin-1", "replace")),
                (b"accept-ranges", b"bytes"),
                *_version_header(version),
            ]
            headers += [
                (k.encode(), v.encode("latin-1", "replace")) for k, v in version.meta.user_metadata.items()
            ]
            if (ctx.header("x-amz-checksum-mode") or "").upper() == "ENABLED":
                headers += [
                    (f"x-amz-checksum-{k}".encode(), v.encode()) for k, v in version.meta.checksums.items()
                ]
            ranged = ctx.header("range")
            if ranged is not None and not head:
                start, length = _parse_range(ranged, version.size)
                status = 206
                headers.append(
                    (b"content-range", f"bytes {start}-{start + length - 1}/{version.size}".encode())
                )
                headers = [h for h in headers if not h[0].startswith(b"x-amz-checksum-")]
        except BaseException:
            handle.close()
            raise
        if head:
            handle.close()
            return Response(200, headers=headers, length=version.size)
        return Response(status, headers=headers, stream=_stream(handle, start, length), length=length)

    async def _DeleteObject(self, ctx: RequestContext, r: S3Route) -> Response:
        version_id, marker = await self._run(self._store.delete, r.bucket, r.key, r.query.get("versionId"))
        headers = []
        if version_id is not None:
            headers.append((b"x-amz-version-id", version_id.encode()))
        if marker:
            headers.append((b"x-amz-delete-marker", b"true"))
        return Response(204, headers=headers)

    async def _DeleteObjects(self, ctx: RequestContext, r: S3Route) -> Response:
        if ctx.header("content-md5") is None and not any(
            k.startswith("x-amz-checksum-") for k, _ in ctx.headers
        ):
            raise InvalidRequestError(
                "Missing required header for this request: Content-MD5 or x-amz-checksum-*"
            )
        read_upload(ctx)
        root = parse(ctx.body)
        if root.tag != "Delete":
            raise MalformedXmlError()
        quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
        objects = root.findall("Object")
        if not objects or len(objects) > MAX_DELETE_KEYS:
            raise MalformedXmlError(f"A Delete request names 1 to {MAX_DELETE_KEYS} objects.")
        results = []
        for node in objects:
            key = node.findtext("Key")
            if not key:
                raise MalformedXmlError()
            version_id = node.findtext("VersionId")
            query = {"versionId": version_id} if version_id else {}
            one = S3Route("DeleteObject", r.bucket, key, query)
            try:
                self._authorize(ctx, one, "s3:DeleteObject")
                deleted_version, marker = await self._run(self._store.delete, r.bucket, key, version_id)
            except S3Error as error:
                results.append(
                    el(
                        "Error",
                        [
                            el("Key", key),
                            *([el("VersionId", version_id)] if version_id else []),
                            el("Code", error.code),
                            el("Message", error.message),
                        ],
                    )
                )
                continue
            except Exception as error:  # AccessDenied and the like: per key, as S3 answers
                code = getattr(error, "code", "InternalError")
                code = "AccessDenied" if code == "AccessDeniedException" else code
                results.append(el("Error", [el("Key", key), el("Code", code), el("Message", str(error))]))
                continue
            if not quiet:
                parts = [el("Key", key)]
                if version_id:
                    parts.append(el("VersionId", version_id))
                if marker:
                    parts += [el("DeleteMarker", True), el("DeleteMarkerVersionId", deleted_version or "")]
                results.append(el("Deleted", parts))
        return _xml(document("DeleteResult", results))

    # Multipart ------------------------------------------------------------------------------

    async def _CreateMultipartUpload(self, ctx: RequestContext, r: S3Route) -> Response:
        meta = ObjectMeta(ctx.header("content-type") or "binary/octet-stream", _user_metadata(ctx))
        upload_id = await self._run(self._uploads.create, r.bucket, r.key, meta)
        children = [el("Bucket", r.bucket), el("Key", r.key), el("UploadId", upload_id)]
        return _xml(document("InitiateMultipartUploadResult", children))

    async def _UploadPart(self, ctx: RequestContext, r: S3Route) -> Response:
        number = _part_number(r)
        upload_id = r.query["uploadId"]
        assert r.bucket is not None and r.key is not None
        await self._run(self._uploads.check_part, upload_id, r.bucket, r.key, number)
        received, path = await self._receive(ctx)
        try:
            await run_sync(
                functools.partial(
                    self._uploads.upload_part,
                    upload_id,
                    r.bucket,
                    r.key,
                    number,
                    source=path,
                    etag=received.etag,
                )
            )
        finally:
            path.unlink(missing_ok=True)
        headers = [(b"etag", received.etag.encode())]
        headers += [(f"x-amz-checksum-{k}".encode(), v.encode()) for k, v in received.checksums.items()]
        return Response(200, headers=headers)

    async def _ListParts(self, ctx: RequestContext, r: S3Route) -> Response:
        parts: list[Part] = await self._run(self._uploads.list_parts, r.query["uploadId"], r.bucket, r.key)
        marker = r.query.get("part-number-marker", "0")
        start = int(marker) if marker.isdigit() and len(marker) < 6 else 0
        max_parts = _max_keys({"max-keys": r.query.get("max-parts", str(MAX_KEYS))})
        after = [p for p in parts if p.number > start]
        page, rest = after[:max_parts], after[max_parts:]
        items = [
            el(
                "Part",
                [
                    el("PartNumber", p.number),
                    el("LastModified", timestamp(p.last_modified)),
                    el("ETag", p.etag),
                    el("Size", p.size),
                ],
            )
            for p in page
        ]
        children = [
            el("Bucket", r.bucket),
            el("Key", r.key),
            el("UploadId", r.query["uploadId"]),
            el("PartNumberMarker", start),
            *([el("NextPartNumberMarker", page[-1].number)] if rest else []),
            el("MaxParts", max_parts),
            el("IsTruncated", bool(rest)),
            *items,
            el("StorageClass", "STANDARD"),
        ]
        return _xml(document("ListPartsResult", children))

    async def _AbortMultipartUpload(self, ctx: RequestContext, r: S3Route) -> Response:
        await self._run(self._uploads.abort, r.query["uploadId"], r.bucket, r.key)
        return Response(204)

    async def _CompleteMultipartUpload(self, ctx: RequestContext, r: S3Route) -> Response:
        root = parse(ctx.body)
        if root.tag != "CompleteMultipartUpload":
            raise MalformedXmlError()
        wanted = []
        for node in root.findall("Part"):
            number, etag = node.findtext("PartNumber") or "", node.findtext("ETag") or ""
            if not number.isdigit() or len(number) > 5 or not etag:
                raise MalformedXmlError()
            wanted.append((int(number), etag))
        version = await self._run(self._uploads.complete, r.query["uploadId"], r.bucket, r.key, wanted)
        children = [
            el("Location", f"/{r.bucket}/{r.key}"),
            el("Bucket", r.bucket),
            el("Key", r.key),
            el("ETag", version.etag),
        ]
        response = _xml(document("CompleteMultipartUploadResult", children))
        response.headers += _version_header(version)
        return response


async def refuse_s3(ctx: RequestContext) -> Response:
    """External-S3 mode: the sources are in another S3, and this endpoint serves none."""
    raise NotImplementedS3Error(
        "This openmwaa reads environment sources from an external S3 (OPENMWAA_SOURCE_S3_ENDPOINT_URL) "
        "and serves no S3 API of its own: send S3 requests to that S3."
    )


@dataclass
class _Page:
    """One page of a ListObjects(V2) answer, as XML elements."""

    contents: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    #: The last key or common prefix on the page (where the next page starts).
    last: str | None = None
    last_is_prefix: bool = False

    @property
    def count(self) -> int:
        return len(self.contents) + len(self.prefixes)


class _NoSuchPublicAccessBlock(S3Error):
    code = "NoSuchPublicAccessBlockConfiguration"
    status = 404


class _MethodNotAllowedMarker(S3Error):
    code = "MethodNotAllowed"
    status = 405


def _xml(body: bytes) -> Response:
    return Response(200, body, list(XML_HEADERS))


def _version_header(version: Version) -> list[tuple[bytes, bytes]]:
    return [(b"x-amz-version-id", version.version_id.encode())]


def _enc(value: str, encode: bool) -> str:
    return quote(value, safe="/") if encode else value


def _max_keys(query: Mapping[str, str]) -> int:
    raw = query.get("max-keys", str(MAX_KEYS))
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidArgumentError("max-keys must be a non-negative integer.")
    return min(int(raw), MAX_KEYS)


def _after_marker(versions: list[Version], key_marker: str, version_marker: str | None) -> int:
    """Where a ListObjectVersions page starts: past the marker version, or past the marker key."""
    for index, version in enumerate(versions):
        if version.key.encode() > key_marker.encode():
            return index
        if version_marker and version.key == key_marker and version.version_id == version_marker:
            return index + 1
    return len(versions)


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    index = key.find(delimiter, len(prefix))
    return key[: index + len(delimiter)] if index >= 0 else None


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode("utf-8", "surrogatepass")).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8", "surrogatepass")
    except (ValueError, UnicodeError) as exc:
        raise InvalidArgumentError("The continuation token provided is incorrect") from exc


def _user_metadata(ctx: RequestContext) -> dict[str, str]:
    metadata = {k: v for k, v in ctx.headers if k.startswith("x-amz-meta-")}
    for name in metadata:
        if not _META_NAME.fullmatch(name):
            raise InvalidArgumentError(f"Metadata header {name[:64]!r} is not valid.")
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_USER_METADATA_BYTES:
        raise InvalidArgumentError("Your metadata headers exceed the maximum allowed metadata size (2 KB).")
    return metadata


def _parse_range(value: str, size: int) -> tuple[int, int]:
    match = _RANGE.fullmatch(value.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise InvalidArgumentError(
            "The Range header must be bytes=first-last, bytes=first- or bytes=-suffix."
        )
    first, last = match.group(1), match.group(2)
    if not first:
        length = min(int(last), size)
        if length == 0:
            raise InvalidRangeError()
        return size - length, length
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise InvalidRangeError()
    return start, end - start + 1


def _check_preconditions(ctx: RequestContext, version: Version) -> None:
    match = ctx.header("if-match")
    if match is not None and match.strip() not in ("*", version.etag):
        raise PreconditionFailedError()
    none_match = ctx.header("if-none-match")
    if none_match is not None and none_match.strip() in ("*", version.etag):
        raise NotModifiedError()


def _part_number(r: S3Route) -> int:
    number = r.query.get("partNumber", "")
    if not number.isdigit() or len(number) > 5:
        raise InvalidArgumentError("Part number must be an integer between 1 and 10000, inclusive")
    return int(number)


_COPY_RANGE = re.compile(r"bytes=(\d{1,15})-(\d{1,15})")


def _copy_range(value: str, size: int) -> tuple[int, int]:
    """``x-amz-copy-source-range: bytes=first-last`` (both given, within the source) -> (start, length)."""
    match = _COPY_RANGE.fullmatch(value.strip())
    if match is None:
        raise InvalidArgumentError("The x-amz-copy-source-range value must be of the form bytes=first-last.")
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= size:
        raise InvalidArgumentError(f"Range specified is not valid for source object of size: {size}")
    return first, last - first + 1


def _flush(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


async def _stream(handle: BinaryIO, start: int, length: int) -> AsyncGenerator[bytes, None]:
    try:
        await run_sync(handle.seek, start)
        left = length
        while left > 0:
            block = await run_sync(handle.read, min(READ_BLOCK, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        handle.close()
