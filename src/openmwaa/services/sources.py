"""Where an environment's S3 sources live on this machine.

``arn:aws:s3:::my-bucket`` is the directory ``<buckets root>/my-bucket``; an S3 key below it is
a path below that directory. Keys never escape their bucket.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from openmwaa.errors import ValidationError
from openmwaa.s3.errors import S3Error
from openmwaa.s3.store import BucketStore

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
