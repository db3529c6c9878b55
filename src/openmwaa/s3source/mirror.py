"""A local mirror of the external S3: what Airflow reads in external-S3 mode.

``<root>/<bucket>/<key>`` holds the current objects openmwaa mirrors (the DAG folders, kept in step
by :meth:`SourceMirror.sync_prefix`, and the unpinned plugins/requirements/startup script, fetched
at create and update); ``<root>/.versions/<bucket>/`` holds pinned versions, fetched once by
version id (a version never changes). Every file is downloaded to ``<root>/.tmp`` and renamed into
place, so Airflow never reads a partial file; files are world-readable, as environments run as
users of their own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import NamedTuple

from openmwaa.s3source.client import ExternalS3, RemoteObject

log = logging.getLogger(__name__)


class SyncResult(NamedTuple):
    fetched: int
    removed: int


class UnsafeKeyError(ValueError):
    """A key that is no relative path below its bucket (``..``, empty segments, a NUL)."""


def key_parts(key: str) -> tuple[str, ...]:
    parts = tuple(key.split("/"))
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in key:
        raise UnsafeKeyError(key)
    return parts


class SourceMirror:
    def __init__(self, root: Path, s3: ExternalS3) -> None:
        self.root = root
        self.s3 = s3
        self._lock = threading.Lock()
        #: (bucket, key) -> the ETag and size of the copy on disk.
        self._have: dict[tuple[str, str], tuple[str, int]] = {}

    def bucket_dir(self, bucket: str) -> Path:
        return self.root / bucket

    def current_path(self, bucket: str, key: str) -> Path:
        return self.bucket_dir(bucket).joinpath(*key_parts(key))

    def sync_prefix(self, bucket: str, prefix: str) -> SyncResult:
        """Make ``<root>/<bucket>/<prefix>`` what the S3 has below ``prefix``: new and changed
        objects fetched, objects gone removed."""
        remote: dict[str, RemoteObject] = {}
        for item in self.s3.list_objects(bucket, prefix):
            if item.key.endswith("/"):
                continue  # a "folder" placeholder
            try:
                key_parts(item.key)
            except UnsafeKeyError:
                log.warning("skipping s3://%s/%r: not a relative path", bucket, item.key[:200])
                continue
            remote[item.key] = item
        fetched = removed = 0
        with self._lock:
            base = self.bucket_dir(bucket)
            for key, item in sorted(remote.items()):
                path = base.joinpath(*key_parts(key))
                if self._have.get((bucket, key)) == (item.etag, item.size) and path.is_file():
                    continue
                try:
                    self._fetch(bucket, key, None, path)
                except (IsADirectoryError, NotADirectoryError, FileExistsError):
                    log.warning("skipping s3://%s/%s: a key and a prefix of other keys at once", bucket, key)
                    continue
                self._have[(bucket, key)] = (item.etag, item.size)
                fetched += 1
            removed = self._remove_others(bucket, prefix, set(remote))
        return SyncResult(fetched, removed)

    def fetch_current(self, bucket: str, key: str) -> Path:
        """The current version of ``key``, fetched now."""
        path = self.current_path(bucket, key)
        item = self.s3.head_object(bucket, key)
        with self._lock:
            self._fetch(bucket, key, None, path)
            self._have[(bucket, key)] = (item.etag, item.size)
        return path

    def fetch_version(self, bucket: str, key: str, version_id: str) -> Path:
        """Version ``version_id`` of ``key`` (fetched once, then kept)."""
        key_parts(key)
        name = hashlib.sha256(f"{key}\0{version_id}".encode()).hexdigest()
        path = self.root / ".versions" / bucket / name
        if path.is_file():
            return path
        self.s3.head_object(bucket, key, version_id)  # SourceObjectMissingError before any write
        with self._lock:
            self._fetch(bucket, key, version_id, path)
        return path

    def _fetch(self, bucket: str, key: str, version_id: str | None, path: Path) -> None:
        tmp = self.root / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = tmp / secrets.token_hex(16)
        try:
            self.s3.download(bucket, key, version_id, temp)
            os.chmod(temp, 0o644)
            _make_dirs(path.parent, self.root)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)

    def _remove_others(self, bucket: str, prefix: str, keep: set[str]) -> int:
        base = self.bucket_dir(bucket)
        start = base.joinpath(*prefix.rstrip("/").split("/")) if prefix.strip("/") else base
        if not start.is_dir():
            return 0
        removed = 0
        for dirpath, _, filenames in os.walk(start, topdown=False):
            rel = Path(dirpath).relative_to(base).as_posix()
            for name in filenames:
                key = name if rel == "." else f"{rel}/{name}"
                if key not in keep and key.startswith(prefix):
                    (Path(dirpath) / name).unlink(missing_ok=True)
                    self._have.pop((bucket, key), None)
                    removed += 1
            if Path(dirpath) != start and not os.listdir(dirpath):
                shutil.rmtree(dirpath, ignore_errors=True)
        return removed


def _make_dirs(directory: Path, root: Path) -> None:
    """``directory`` and its parents up to ``root``, each 0755 (environments' users read them)."""
    missing = []
    while not directory.is_dir() and directory != root:
        missing.append(directory)
        directory = directory.parent
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 - read by environments' users, as the buckets are
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        os.chmod(path, 0o755)  # noqa: S103
