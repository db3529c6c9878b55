"""Where an environment's S3 sources live on this machine.

Two kinds of source (:class:`SourceBuckets`): openmwaa's own buckets (below), or an external S3
read through a local mirror (:class:`ExternalBuckets`).

``arn:aws:s3:::my-bucket`` is the directory ``<buckets root>/my-bucket``; an S3 key below it is
a path below that directory. Keys never escape their bucket.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Protocol

from openmwaa.errors import ValidationError
from openmwaa.s3.errors import S3Error
from openmwaa.s3.store import BucketStore
from openmwaa.s3source.client import SourceBucketMissingError, SourceObjectMissingError, SourceS3Error
from openmwaa.s3source.mirror import SourceMirror, UnsafeKeyError

_S3_ARN_PREFIX = "arn:aws:s3:::"


def bucket_dir(buckets_root: Path, bucket_arn: str) -> Path:
    if not bucket_arn.startswith(_S3_ARN_PREFIX):
        raise ValidationError(
            f"SourceBucketArn {bucket_arn!r} is not an S3 bucket ARN (arn:aws:s3:::<bucket>)"
        )
    bucket = bucket_arn[len(_S3_ARN_PREFIX) :]
    # A leading dot is never an S3 bucket name; it would name the S3 version store
    # (``.openmwaa-s3``, every bucket's older versions) as a source.
    if not bucket or "/" in bucket or bucket.startswith("."):
        raise ValidationError(f"SourceBucketArn {bucket_arn!r} does not name a bucket")
    return buckets_root / bucket


def object_path(bucket: Path, key: str, *, member: str) -> Path:
    """The local path of S3 key ``key`` in ``bucket``; a ValidationError names ``member`` if it escapes."""
    pure = PurePosixPath(key.lstrip("/"))
    if not key.strip("/") or any(part in ("..", ".") for part in pure.parts) or "\x00" in key:
        raise ValidationError(f"{member} {key!r} is not a valid S3 key: use a relative path such as dags/")
    return bucket.joinpath(*pure.parts)


def require_bucket(bucket: Path, bucket_arn: str) -> None:
    if not bucket.is_dir():
        raise ValidationError(
            f"SourceBucketArn {bucket_arn!r}: the bucket does not exist. "
            f"openmwaa keeps S3 buckets as directories; create {bucket} and try again."
        )


def require_object(path: Path, *, member: str, key: str) -> None:
    if not path.is_file():
        raise ValidationError(f"{member} {key!r}: no such object in the source bucket (expected file {path})")


def version_member(path_member: str) -> str:
    """``RequirementsS3Path`` -> ``RequirementsS3ObjectVersion``."""
    return path_member.replace("S3Path", "S3ObjectVersion")


def object_version_path(store: BucketStore, bucket: Path, key: str, version_id: str, *, member: str) -> Path:
    """The file holding version ``version_id`` of ``key``, as MWAA pins it; a ValidationError if none."""
    object_path(bucket, key, member=member)  # the same key rules as unpinned sources
    try:
        return store.version_path(bucket.name, key, version_id)
    except S3Error as exc:
        raise ValidationError(
            f"{version_member(member)} {version_id!r}: no such version of {key!r} in bucket "
            f"{bucket.name!r} ({exc.message})"
        ) from exc


def bucket_name(bucket_arn: str) -> str:
    """``arn:aws:s3:::b`` -> ``b`` (a ValidationError for anything else)."""
    return bucket_dir(Path("/"), bucket_arn).name


class SourceBuckets(Protocol):
    """Where an environment's sources are read from: openmwaa's own buckets, or an external S3.

    ``refresh`` (create and update): check the sources exist and bring them up to date;
    otherwise (building a spec again, e.g. at a restart) use what is already there.
    """

    def require_bucket(self, bucket_arn: str) -> None: ...

    def dags_dir(self, bucket_arn: str, dag_path: str, *, refresh: bool) -> Path: ...

    def source_file(
        self, bucket_arn: str, key: str, version: str | None, *, member: str, refresh: bool
    ) -> Path: ...


class LocalBuckets:
    """openmwaa's own buckets: directories below the buckets root, their versions in ``store``."""

    def __init__(self, root: Path, store: BucketStore) -> None:
        self._root = root
        self._store = store

    def require_bucket(self, bucket_arn: str) -> None:
        require_bucket(bucket_dir(self._root, bucket_arn), bucket_arn)

    def dags_dir(self, bucket_arn: str, dag_path: str, *, refresh: bool) -> Path:
        dags = object_path(bucket_dir(self._root, bucket_arn), dag_path, member="DagS3Path")
        if refresh:
            dags.mkdir(parents=True, exist_ok=True)
        return dags

    def source_file(
        self, bucket_arn: str, key: str, version: str | None, *, member: str, refresh: bool
    ) -> Path:
        bucket = bucket_dir(self._root, bucket_arn)
        if version:
            return object_version_path(self._store, bucket, key, version, member=member)
        path = object_path(bucket, key, member=member)
        if refresh:
            require_object(path, member=member, key=key)
        return path


class ExternalBuckets:
    """An external S3, read through a local mirror (``openmwaa.s3source``)."""

    def __init__(self, mirror: SourceMirror) -> None:
        self._mirror = mirror

    def require_bucket(self, bucket_arn: str) -> None:
        name = bucket_name(bucket_arn)
        try:
            self._mirror.s3.head_bucket(name)
        except SourceBucketMissingError as exc:
            raise ValidationError(
                f"SourceBucketArn {bucket_arn!r}: the bucket does not exist in the source S3."
            ) from exc
        except SourceS3Error as exc:
            raise ValidationError(
                f"SourceBucketArn {bucket_arn!r}: the source S3 did not answer ({exc})."
            ) from exc

    def dags_dir(self, bucket_arn: str, dag_path: str, *, refresh: bool) -> Path:
        name = bucket_name(bucket_arn)
        dags = object_path(self._mirror.bucket_dir(name), dag_path, member="DagS3Path")
        if refresh:
            prefix = dag_path.strip("/") + "/"
            try:
                self._mirror.sync_prefix(name, prefix)
            except SourceS3Error as exc:
                raise ValidationError(
                    f"DagS3Path {dag_path!r}: the source S3 did not answer ({exc})."
                ) from exc
        # Airflow's DAG folder exists even before the first poll reaches it (a restart).
        dags.mkdir(parents=True, exist_ok=True)
        dags.chmod(0o755)
        return dags

    def source_file(
        self, bucket_arn: str, key: str, version: str | None, *, member: str, refresh: bool
    ) -> Path:
        name = bucket_name(bucket_arn)
        object_path(self._mirror.bucket_dir(name), key, member=member)  # the same key rules
        try:
            if version:
                return self._mirror.fetch_version(name, key, version)
            path = self._mirror.current_path(name, key)
            if refresh or not path.is_file():
                self._mirror.fetch_current(name, key)
            return path
        except SourceObjectMissingError as exc:
            if version:
                raise ValidationError(
                    f"{version_member(member)} {version!r}: no such version of {key!r} in bucket {name!r}"
                ) from exc
            raise ValidationError(f"{member} {key!r}: no such object in the source bucket {name!r}") from exc
        except (SourceS3Error, UnsafeKeyError) as exc:
            raise ValidationError(f"{member} {key!r}: could not be read from the source S3 ({exc}).") from exc
