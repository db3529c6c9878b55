"""The environment's code on the worker's machine, fetched through openmwaa's S3 API.

Through S3 rather than in the join response: the DAG folder changes while the worker runs and
may be large, S3 lists and fetches only what changed (by ETag), the worker's own credentials
must be allowed to read the bucket (``s3:ListBucket``, ``s3:GetObject``, and
``s3:GetObjectVersion`` for pinned plugins, requirements and startup script), and every read is
audited like any other S3 call. Files are written to a temporary name and renamed into place, so
Airflow never parses half a file; a DAG deleted from the bucket is deleted here at the next sync.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path, PurePosixPath
from typing import Any, Final

from openmwaa.errors import ValidationError
from openmwaa.wire.worker_pool import SourceObject, WorkerSources

log = logging.getLogger(__name__)

MANIFEST: Final = ".openmwaa-dags.json"


def local_path(root: Path, relative: str) -> Path | None:
    """Where key suffix ``relative`` goes below ``root``; None for a key that would leave it."""
    pure = PurePosixPath(relative)
    if not relative or relative.endswith("/") or pure.is_absolute() or "\x00" in relative:
        return None
    if any(part in ("", ".", "..") for part in relative.split("/")):
        return None
    return root.joinpath(*pure.parts)


class SourceSync:
    """Keeps ``dags_dir`` in step with the bucket's DAG prefix; fetches pinned objects."""

    def __init__(self, s3: Any, sources: WorkerSources, dags_dir: Path, files_dir: Path) -> None:
        self._s3 = s3
        self._sources = sources
        self._dags = dags_dir
        self._files = files_dir
        self._manifest_path = dags_dir.parent / MANIFEST

    def sync_dags(self) -> int:
        """Download new and changed DAG files, delete removed ones; how many files changed."""
        self._dags.mkdir(parents=True, exist_ok=True)
        before = self._manifest()
        listed: dict[str, str] = {}
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._sources.bucket, Prefix=self._sources.dags_prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                relative = str(item["Key"])[len(self._sources.dags_prefix) :]
                if local_path(self._dags, relative) is None:
                    log.warning("skipping S3 key %r: not a file path below the DAG folder", item["Key"])
                    continue
                listed[relative] = str(item["ETag"])
        changed = 0
        for relative, etag in listed.items():
            target = local_path(self._dags, relative)
            assert target is not None
            if before.get(relative) == etag and target.is_file():
                continue
            body = self._s3.get_object(Bucket=self._sources.bucket, Key=self._sources.dags_prefix + relative)
            _write_atomically(target, body["Body"].read())
            changed += 1
        for relative in set(before) - set(listed):
            gone = local_path(self._dags, relative)
            if gone is not None:
                gone.unlink(missing_ok=True)
                changed += 1
        self._write_manifest(listed)
        return changed

    def fetch(self, source: SourceObject, name: str) -> Path:
        """A pinned object (plugins.zip, requirements.txt, the startup script) as a local file."""
        args: dict[str, str] = {"Bucket": self._sources.bucket, "Key": source.key}
        if source.version:
            args["VersionId"] = source.version
        body = self._s3.get_object(**args)["Body"].read()
        target = self._files / name
        _write_atomically(target, body)
        return target

    def _manifest(self) -> dict[str, str]:
        try:
            data = json.loads(self._manifest_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _write_manifest(self, listed: dict[str, str]) -> None:
        _write_atomically(self._manifest_path, json.dumps(listed, sort_keys=True).encode())


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex[:8]}")
    try:
        with staging.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def check_sources(sources: WorkerSources) -> None:
    """Refuse a grant whose DAG prefix could not be a folder of the bucket."""
    if sources.dags_prefix and local_path(Path("/"), sources.dags_prefix.rstrip("/")) is None:
        raise ValidationError(f"The environment's DAG folder {sources.dags_prefix!r} is not a folder key.")
