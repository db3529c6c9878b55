"""The external S3 openmwaa reads environment sources from: botocore's s3 client, its errors
translated once into the three that matter here (no bucket, no such object or version, the S3
could not answer)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import Session

_BLOCK = 1024 * 1024
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_OBJECT = {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "InvalidArgument"}


class SourceS3Error(Exception):
    """The external S3 could not answer (unreachable, refused the credentials, ...)."""


class SourceBucketMissingError(SourceS3Error):
    pass


class SourceObjectMissingError(SourceS3Error):
    pass


@dataclass(frozen=True)
class RemoteObject:
    key: str
    etag: str
    size: int


class ExternalS3:
    """A bucket reader on ``endpoint_url``. Credentials given are used; none: botocore's chain."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        self._client: Any = Session().create_client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            config=config,
        )

    def __repr__(self) -> str:  # the credentials stay out of logs
        return f"ExternalS3({self.endpoint_url!r})"

    def head_bucket(self, bucket: str) -> None:
        self._call("head_bucket", bucket, None, Bucket=bucket)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[RemoteObject]:
        """Every object whose key starts with ``prefix`` (ListObjectsV2, all pages)."""
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._call("list_objects_v2", bucket, None, Bucket=bucket, Prefix=prefix, **extra)
            for item in page.get("Contents", []):
                yield RemoteObject(str(item["Key"]), str(item.get("ETag", "")), int(item.get("Size", 0)))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def head_object(self, bucket: str, key: str, version_id: str | None = None) -> RemoteObject:
        extra = {"VersionId": version_id} if version_id else {}
        head = self._call("head_object", bucket, key, Bucket=bucket, Key=key, **extra)
        return RemoteObject(key, str(head.get("ETag", "")), int(head.get("ContentLength", 0)))

    def download(self, bucket: str, key: str, version_id: str | None, target: Path) -> None:
        """The object's bytes into ``target`` (an open-for-writing path the caller renames)."""
        extra = {"VersionId": version_id} if version_id else {}
        reply = self._call("get_object", bucket, key, Bucket=bucket, Key=key, **extra)
        body = reply["Body"]
        try:
            with open(target, "wb") as handle:
                for block in iter(lambda: body.read(_BLOCK), b""):
                    handle.write(block)
                handle.flush()
                os.fsync(handle.fileno())
        except BotoCoreError as exc:
            raise SourceS3Error(
                f"reading s3://{bucket}/{key} from {self.endpoint_url} failed: {exc}"
            ) from exc
        finally:
            body.close()

    def _call(self, operation: str, bucket: str, key: str | None, **params: Any) -> Any:
        method = getattr(self._client, operation)
        where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
        try:
            return method(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _MISSING_BUCKET or (key is None and status == 404):
                raise SourceBucketMissingError(f"{where}: no such bucket") from exc
            if key is not None and (code in _MISSING_OBJECT or status == 404):
                raise SourceObjectMissingError(f"{where}: {error.get('Message') or code}") from exc
            raise SourceS3Error(
                f"{operation} {where} at {self.endpoint_url}: {code} {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise SourceS3Error(f"{operation} {where} at {self.endpoint_url}: {exc}") from exc
