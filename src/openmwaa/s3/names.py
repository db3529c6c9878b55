"""Strict bucket names and object keys: every key is a safe relative path below its bucket."""

from __future__ import annotations

import re

from openmwaa.s3.errors import InvalidArgumentError, InvalidBucketNameError, KeyTooLongError

MAX_KEY_BYTES = 1024
#: Most file systems' limit on one path segment.
MAX_SEGMENT_BYTES = 255
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")


def is_bucket_name(name: str) -> bool:
    return bool(_BUCKET.fullmatch(name)) and ".." not in name and not _IP_LIKE.fullmatch(name)


def check_bucket_name(name: str) -> str:
    if not is_bucket_name(name):
        raise InvalidBucketNameError(
            "The specified bucket is not valid: 3 to 63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit."
        )
    return name


def check_key(key: str) -> tuple[str, ...]:
    """The path segments of ``key``; refused when it cannot be a file below the bucket directory.

    S3 allows any key; openmwaa stores the current version as a plain file (what Airflow reads),
    so keys that are not relative file paths (``..``, ``.``, empty segments, a leading or trailing
    ``/``, NUL or other control characters) are refused with a clear message.
    """
    encoded = key.encode("utf-8", "surrogatepass")
    if not key:
        raise InvalidArgumentError("An object key must not be empty.")
    if len(encoded) > MAX_KEY_BYTES:
        raise KeyTooLongError("Your key is too long (at most 1024 bytes of UTF-8).")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key) or "\\" in key:
        raise InvalidArgumentError("Object keys must not contain control characters or backslashes here.")
    segments = tuple(key.split("/"))
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidArgumentError(
                f"Object key {key[:200]!r} is not a relative file path (no leading, trailing or "
                "double '/', no '.' or '..' segments): openmwaa stores objects as files."
            )
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise KeyTooLongError(
                f"Each '/'-separated part of a key must be at most {MAX_SEGMENT_BYTES} bytes."
            )
    return segments
