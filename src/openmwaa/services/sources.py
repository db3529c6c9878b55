"""Where an environment's S3 sources live on this machine.

``arn:aws:s3:::my-bucket`` is the directory ``<buckets root>/my-bucket``; an S3 key below it is
a path below that directory. Keys never escape their bucket.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from openmwaa.errors import ValidationError

_S3_ARN_PREFIX = "arn:aws:s3:::"


def bucket_dir(buckets_root: Path, bucket_arn: str) -> Path:
    if not bucket_arn.startswith(_S3_ARN_PREFIX):
        raise ValidationError(
            f"SourceBucketArn {bucket_arn!r} is not an S3 bucket ARN (arn:aws:s3:::<bucket>)"
        )
    bucket = bucket_arn[len(_S3_ARN_PREFIX) :]
    if not bucket or "/" in bucket or bucket in (".", ".."):
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
