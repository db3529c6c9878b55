"""Multipart uploads: parts kept as files beside the buckets until completed into one object.

``<buckets root>/.openmwaa-s3/uploads/<upload id>/`` holds ``upload.json`` (bucket, key,
metadata) and one ``<n>.part`` file per part with its MD5 beside it in ``<n>.md5``. Completing
streams the parts, in order, into a temporary file that :meth:`BucketStore.put` renames into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from openmwaa.s3.errors import (
    EntityTooLargeError,
    EntityTooSmallError,
    InvalidArgumentError,
    InvalidPartError,
    InvalidPartOrderError,
    NoSuchUploadError,
)
from openmwaa.s3.store import META_DIR, BucketStore, ObjectMeta, Version

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PARTS = 10_000
_COPY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int
    last_modified: float


class MultipartUploads:
    def __init__(self, store: BucketStore) -> None:
        self._store = store
        self._root = store.root / META_DIR / "uploads"

    def create(self, bucket: str, key: str, meta: ObjectMeta) -> str:
        self._store.head_bucket(bucket)
        self._store.object_path(bucket, key)
        upload_id = secrets.token_urlsafe(32)
        directory = self._root / upload_id
        directory.mkdir(parents=True)
        record = {"bucket": bucket, "key": key, "meta": meta.to_json(), "initiated": time.time()}
        (directory / "upload.json").write_text(json.dumps(record))
        return upload_id

    def _directory(self, upload_id: str, bucket: str, key: str) -> tuple[Path, dict[str, object]]:
        if not upload_id.replace("-", "").replace("_", "").isalnum() or len(upload_id) > 128:
            raise NoSuchUploadError()
        directory = self._root / upload_id
        try:
            record = json.loads((directory / "upload.json").read_text())
        except (OSError, ValueError) as exc:
            raise NoSuchUploadError() from exc
        if record["bucket"] != bucket or record["key"] != key:
            raise NoSuchUploadError()
        return directory, record

    def check_part(self, upload_id: str, bucket: str, key: str, number: int) -> None:
        """Refuse a part of an upload that does not exist, before its body is read."""
        if not 1 <= number <= MAX_PARTS:
            raise InvalidArgumentError(f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")
        self._directory(upload_id, bucket, key)

    def upload_part(
        self, upload_id: str, bucket: str, key: str, number: int, *, source: Path, etag: str
    ) -> None:
        """Make the file ``source`` (a received, verified part) part ``number``, replacing any before."""
        self.check_part(upload_id, bucket, key, number)
        directory, _ = self._directory(upload_id, bucket, key)
        try:
            (directory / f"{number}.md5").write_text(etag)
            os.replace(source, directory / f"{number}.part")
        except FileNotFoundError as exc:  # aborted meanwhile
            raise NoSuchUploadError() from exc

    def list_parts(self, upload_id: str, bucket: str, key: str) -> list[Part]:
        directory, _ = self._directory(upload_id, bucket, key)
        parts = []
        for path in directory.glob("*.part"):
            number = int(path.name.split(".")[0])
            st = path.stat()
            parts.append(Part(number, (directory / f"{number}.md5").read_text(), st.st_size, st.st_mtime))
        return sorted(parts, key=lambda p: p.number)

    def abort(self, upload_id: str, bucket: str, key: str) -> None:
        directory, _ = self._directory(upload_id, bucket, key)
        shutil.rmtree(directory, ignore_errors=True)

    def complete(self, upload_id: str, bucket: str, key: str, wanted: list[tuple[int, str]]) -> Version:
        directory, record = self._directory(upload_id, bucket, key)
        if not wanted:
            raise InvalidArgumentError("You must specify at least one part")
        numbers = [n for n, _ in wanted]
        if numbers != sorted(set(numbers)):
            raise InvalidPartOrderError("The list of parts was not in ascending order.")
        parts = {p.number: p for p in self.list_parts(upload_id, bucket, key)}
        for index, (number, etag) in enumerate(wanted):
            part = parts.get(number)
            if part is None or part.etag.strip('"') != etag.strip().strip('"'):
                raise InvalidPartError(
                    "One or more of the specified parts could not be found. The part may not have "
                    "been uploaded, or the specified entity tag may not match the part's entity tag."
                )
            if index < len(wanted) - 1 and part.size < MIN_PART_BYTES:
                raise EntityTooSmallError("Your proposed upload is smaller than the minimum allowed size")
        digests = b""
        path, handle = self._store.temp_file()
        try:
            with handle:
                for number, _ in wanted:
                    digests += bytes.fromhex(parts[number].etag.strip('"'))
                    with open(directory / f"{number}.part", "rb") as source:
                        shutil.copyfileobj(source, handle, _COPY_BLOCK)
                handle.flush()
                os.fsync(handle.fileno())
            etag = f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(wanted)}"'
            meta = ObjectMeta.from_json(str(record["meta"]))
            version = self._store.put(bucket, key, path, meta, etag)
        except OSError as exc:
            raise EntityTooLargeError("The upload could not be assembled.") from exc
        finally:
            path.unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
        return version
