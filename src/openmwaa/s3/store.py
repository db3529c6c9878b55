"""Buckets as directories, with S3's versions kept beside them.

The current version of every object is the plain file at ``<buckets root>/<bucket>/<key>``:
that is what Airflow reads, and what users who copy files by hand already have. Everything else
lives in ``<buckets root>/.openmwaa-s3/``:

- ``index.sqlite3``: bucket settings and one row per version (etag, size, checksums, metadata);
- ``versions/<bucket>/<blob>``: the content of non-current versions;
- ``tmp/``: uploads being written (same file system, so a finished upload is one atomic rename:
  a killed upload leaves a temporary file, removed at the next start, never a partial object).

A file whose size or modification time differs from its row (written or edited by hand) is the
current version with version id ``null``, its ETag computed from its content.

All operations take one lock (they run in worker threads); the metadata is committed after the
rename, so a crash in between leaves a file the index does not describe, which reads as a
hand-written one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from openmwaa.s3.errors import (
    BucketAlreadyOwnedByYouError,
    BucketNotEmptyError,
    InvalidArgumentError,
    MalformedXmlError,
    NoSuchBucketError,
    NoSuchKeyError,
    NoSuchVersionError,
)
from openmwaa.s3.names import check_bucket_name, check_key, is_bucket_name

META_DIR = ".openmwaa-s3"
NULL_VERSION = "null"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, versioning TEXT NOT NULL DEFAULT '', created REAL NOT NULL,
    public_access_block TEXT
);
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
    is_latest INTEGER NOT NULL, delete_marker INTEGER NOT NULL,
    size INTEGER NOT NULL, etag TEXT NOT NULL, last_modified REAL NOT NULL,
    mtime_ns INTEGER NOT NULL, blob TEXT, meta TEXT NOT NULL,
    UNIQUE (bucket, key, version_id)
);
CREATE INDEX IF NOT EXISTS versions_key ON versions (bucket, key, seq);
"""


@dataclass(frozen=True)
class ObjectMeta:
    """What is stored with a version besides its bytes."""

    content_type: str = "binary/octet-stream"
    user_metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"content_type": self.content_type, "user": self.user_metadata, "checksums": self.checksums}
        )

    @classmethod
    def from_json(cls, text: str) -> ObjectMeta:
        data = json.loads(text)
        return cls(data["content_type"], dict(data["user"]), dict(data["checksums"]))


@dataclass(frozen=True)
class Version:
    key: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    size: int
    etag: str
    last_modified: float
    meta: ObjectMeta
    #: Where the bytes are (None for a delete marker).
    path: Path | None


@dataclass(frozen=True)
class Bucket:
    name: str
    created: float
    versioning: str


class BucketStore:
    """Buckets, objects and their versions under ``root``."""

    def __init__(self, root: Path, *, clock: Any = time.time) -> None:
        self.root = root
        self._meta = root / META_DIR
        self._tmp = self._meta / "tmp"
        self._clock = clock
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None

    # Setup ---------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
            for leftover in self._tmp.iterdir():  # uploads a crash interrupted
                if leftover.is_file():
                    leftover.unlink(missing_ok=True)
            db = sqlite3.connect(self._meta / "index.sqlite3", check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def temp_file(self) -> tuple[Path, BinaryIO]:
        """A new temporary file on the buckets' file system, for an upload to be written into."""
        with self._lock:
            self._conn()
        path = self._tmp / secrets.token_hex(16)
        return path, open(path, "xb")

    # Buckets -------------------------------------------------------------------------------

    def bucket_dir(self, name: str) -> Path:
        return self.root / name

    def list_buckets(self) -> list[Bucket]:
        with self._lock:
            rows = {r[0]: r for r in self._conn().execute("SELECT name, created, versioning FROM buckets")}
        buckets = []
        if self.root.is_dir():
            for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
                if entry.is_dir(follow_symlinks=False) and is_bucket_name(entry.name):
                    row = rows.get(entry.name)
                    created = row[1] if row else entry.stat(follow_symlinks=False).st_mtime
                    buckets.append(Bucket(entry.name, created, row[2] if row else ""))
        return buckets

    def head_bucket(self, name: str) -> Bucket:
        check_bucket_name(name)
        path = self.bucket_dir(name)
        if not path.is_dir() or path.is_symlink():
            raise NoSuchBucketError(name)
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT created, versioning FROM buckets WHERE name = ?", (name,))
                .fetchone()
            )
        if row is None:
            return Bucket(name, path.stat().st_mtime, "")
        return Bucket(name, row[0], row[1])

    def create_bucket(self, name: str) -> None:
        check_bucket_name(name)
        with self._lock:
            path = self.bucket_dir(name)
            if path.exists():
                raise BucketAlreadyOwnedByYouError(name)
            self.root.mkdir(parents=True, exist_ok=True)
            path.mkdir()
            self._conn().execute(
                "INSERT OR REPLACE INTO buckets (name, versioning, created) VALUES (?, '', ?)",
                (name, self._clock()),
            )

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            self.head_bucket(name)
            db = self._conn()
            path = self.bucket_dir(name)
            has_files = any(f for _, _, files in os.walk(path) for f in files)
            has_versions = db.execute("SELECT 1 FROM versions WHERE bucket = ? LIMIT 1", (name,)).fetchone()
            if has_files or has_versions:
                raise BucketNotEmptyError(name)
            shutil.rmtree(path)
            shutil.rmtree(self._meta / "versions" / name, ignore_errors=True)
            db.execute("DELETE FROM buckets WHERE name = ?", (name,))

    def set_versioning(self, name: str, status: str) -> None:
        if status not in ("Enabled", "Suspended"):
            raise MalformedXmlError("Versioning Status must be Enabled or Suspended.")
        with self._lock:
            bucket = self.head_bucket(name)
            self._conn().execute(
                "INSERT OR REPLACE INTO buckets (name, versioning, created, public_access_block) "
                "VALUES (?, ?, ?, (SELECT public_access_block FROM buckets WHERE name = ?))",
                (name, status, bucket.created, name),
            )

    def set_public_access_block(self, name: str, config: dict[str, bool] | None) -> None:
        with self._lock:
            bucket = self.head_bucket(name)
            self._conn().execute(
                "INSERT OR REPLACE INTO buckets (name, versioning, created, public_access_block) "
                "VALUES (?, ?, ?, ?)",
                (name, bucket.versioning, bucket.created, None if config is None else json.dumps(config)),
            )

    def public_access_block(self, name: str) -> dict[str, bool] | None:
        with self._lock:
            self.head_bucket(name)
            row = (
                self._conn()
                .execute("SELECT public_access_block FROM buckets WHERE name = ?", (name,))
                .fetchone()
            )
        if row is None or row[0] is None:
            return None
        value: dict[str, bool] = json.loads(row[0])
        return value

    # Objects -------------------------------------------------------------------------------

    def object_path(self, bucket: str, key: str) -> Path:
        """The current version's file, refused if any part of the way is a symlink or a file."""
        segments = check_key(key)
        path = self.bucket_dir(bucket)
        for index, segment in enumerate(segments):
            path = path / segment
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(mode):
                raise InvalidArgumentError(f"Object key {key[:200]!r} passes through a symbolic link.")
            last = index == len(segments) - 1
            if not last and not stat.S_ISDIR(mode):
                raise InvalidArgumentError(
                    f"Object key {key[:200]!r} is below {'/'.join(segments[: index + 1])!r}, "
                    "which is an object: openmwaa stores objects as files."
                )
            if last and stat.S_ISDIR(mode):
                raise InvalidArgumentError(
                    f"Object key {key[:200]!r} is a prefix of other objects (a directory here)."
                )
        return path

    def put(self, bucket: str, key: str, source: Path, meta: ObjectMeta, etag: str) -> Version:
        """Make the file ``source`` (a :meth:`temp_file`) the current version of ``key``."""
        with self._lock:
            info = self.head_bucket(bucket)
            path = self.object_path(bucket, key)
            db = self._conn()
            new_id = secrets.token_urlsafe(24) if info.versioning == "Enabled" else NULL_VERSION
            self._retire_current(info, key, path, replacing_null=new_id == NULL_VERSION)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, path)
            st = path.stat()
            db.execute(
                "INSERT INTO versions (bucket, key, version_id, is_latest, delete_marker, size, etag, "
                "last_modified, mtime_ns, blob, meta) VALUES (?, ?, ?, 1, 0, ?, ?, ?, ?, NULL, ?)",
                (bucket, key, new_id, st.st_size, etag, st.st_mtime, st.st_mtime_ns, meta.to_json()),
            )
            return self._version(self._row(bucket, key, new_id))

    def delete(self, bucket: str, key: str, version_id: str | None) -> tuple[str | None, bool]:
        """Delete ``key`` (a marker when versioned) or one version: ``(version id, was a marker)``."""
        with self._lock:
            info = self.head_bucket(bucket)
            path = self.object_path(bucket, key)
            if version_id is not None:
                return self._delete_version(info, key, path, version_id)
            if not info.versioning:
                path.unlink(missing_ok=True)
                self._conn().execute("DELETE FROM versions WHERE bucket = ? AND key = ?", (bucket, key))
                return None, False
            marker_id = secrets.token_urlsafe(24) if info.versioning == "Enabled" else NULL_VERSION
            self._retire_current(info, key, path, replacing_null=marker_id == NULL_VERSION)
            self._conn().execute(
                "INSERT INTO versions (bucket, key, version_id, is_latest, delete_marker, size, etag, "
                "last_modified, mtime_ns, blob, meta) VALUES (?, ?, ?, 1, 1, 0, '', ?, 0, NULL, ?)",
                (bucket, key, marker_id, self._clock(), ObjectMeta().to_json()),
            )
            return marker_id, True

    def get(self, bucket: str, key: str, version_id: str | None = None) -> tuple[Version, BinaryIO | None]:
        """A version and its bytes, opened under the lock (a later overwrite cannot change them)."""
        with self._lock:
            self.head_bucket(bucket)
            path = self.object_path(bucket, key)
            if version_id is None:
                current = self._current(bucket, key, path)
                if current is None:
                    raise NoSuchKeyError(key)
                version = current
            else:
                version = self._find_version(bucket, key, path, version_id)
            handle = None if version.path is None else open(version.path, "rb")  # noqa: SIM115
            return version, handle

    def version_path(self, bucket: str, key: str, version_id: str) -> Path:
        """Where the bytes of one version of ``key`` are now (NoSuchVersionError if it has none)."""
        version, handle = self.get(bucket, key, version_id)
        if handle is None or version.path is None:
            raise NoSuchVersionError(key, version_id)  # a delete marker has no content
        handle.close()
        return version.path

    def list_current(self, bucket: str, prefix: str) -> Iterator[Version]:
        """The current objects whose key starts with ``prefix``, in S3's order (UTF-8 bytes)."""
        with self._lock:
            self.head_bucket(bucket)
            rows = {
                row["key"]: row
                for row in self._rows("bucket = ? AND is_latest = 1 AND delete_marker = 0", (bucket,))
            }
        base = self.bucket_dir(bucket)
        keys = []
        # Only directories that can hold keys with this prefix are walked.
        start = base.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else base
        for dirpath, _, filenames in os.walk(start, followlinks=False):
            rel = os.path.relpath(dirpath, base)
            for name in filenames:
                key = name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix) and not os.path.islink(os.path.join(dirpath, name)):
                    keys.append(key)
        keys.sort(key=lambda k: k.encode("utf-8", "surrogateescape"))
        for key in keys:
            path = base / key
            try:
                version = self._describe_file(bucket, key, path, rows.get(key))
            except (FileNotFoundError, InvalidArgumentError):
                continue  # removed meanwhile, or not a key this store can name
            yield version

    def list_versions(self, bucket: str, prefix: str) -> list[Version]:
        """Every version of keys starting with ``prefix``: by key, newest first."""
        with self._lock:
            self.head_bucket(bucket)
            current = {v.key: v for v in self.list_current(bucket, prefix)}
            rows = self._rows("bucket = ? AND substr(key, 1, ?) = ?", (bucket, len(prefix), prefix))
            versions: dict[str, list[Version]] = {}
            for row in sorted(rows, key=lambda r: -int(r["seq"])):
                version = self._version(row)
                if version.is_latest and not version.delete_marker:
                    continue  # the current file speaks for itself (it may have been edited by hand)
                versions.setdefault(row["key"], []).append(version)
            for key, version in current.items():
                versions.setdefault(key, []).insert(0, version)
        result = []
        for key in sorted(versions, key=lambda k: k.encode("utf-8", "surrogateescape")):
            result.extend(versions[key])
        return result

    # Internals -----------------------------------------------------------------------------

    def _rows(self, where: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        db = self._conn()
        db.row_factory = sqlite3.Row
        return list(db.execute(f"SELECT * FROM versions WHERE {where} ORDER BY seq", params))  # noqa: S608

    def _row(self, bucket: str, key: str, version_id: str) -> sqlite3.Row:
        rows = self._rows("bucket = ? AND key = ? AND version_id = ?", (bucket, key, version_id))
        if not rows:
            raise NoSuchVersionError(key, version_id)
        return rows[0]

    def _latest(self, bucket: str, key: str) -> sqlite3.Row | None:
        rows = self._rows("bucket = ? AND key = ? AND is_latest = 1", (bucket, key))
        return rows[-1] if rows else None

    def _blob_path(self, bucket: str, blob: str) -> Path:
        return self._meta / "versions" / bucket / blob

    def _version(self, row: sqlite3.Row) -> Version:
        if row["delete_marker"]:
            path = None
        elif row["blob"] is None:
            path = self.bucket_dir(row["bucket"]).joinpath(*row["key"].split("/"))
        else:
            path = self._blob_path(row["bucket"], row["blob"])
        return Version(
            key=row["key"],
            version_id=row["version_id"],
            is_latest=bool(row["is_latest"]),
            delete_marker=bool(row["delete_marker"]),
            size=row["size"],
            etag=row["etag"],
            last_modified=row["last_modified"],
            meta=ObjectMeta.from_json(row["meta"]),
            path=path,
        )

    def _matches(self, row: sqlite3.Row | None, st: os.stat_result) -> bool:
        return (
            row is not None
            and not row["delete_marker"]
            and row["size"] == st.st_size
            and row["mtime_ns"] == st.st_mtime_ns
        )

    def _describe_file(self, bucket: str, key: str, path: Path, row: sqlite3.Row | None) -> Version:
        st = path.stat()
        if row is not None and self._matches(row, st):
            return self._version(row)
        return Version(
            key, NULL_VERSION, True, False, st.st_size, _md5_file(path), st.st_mtime, ObjectMeta(), path
        )

    def _current(self, bucket: str, key: str, path: Path) -> Version | None:
        if not path.is_file():
            return None
        return self._describe_file(bucket, key, path, self._latest(bucket, key))

    def _find_version(self, bucket: str, key: str, path: Path, version_id: str) -> Version:
        current = self._current(bucket, key, path)
        if current is not None and current.version_id == version_id:
            return current
        rows = self._rows("bucket = ? AND key = ? AND version_id = ?", (bucket, key, version_id))
        if not rows:
            raise NoSuchVersionError(key, version_id)
        row = rows[0]
        if row["blob"] is None and not row["delete_marker"]:
            raise NoSuchVersionError(key, version_id)  # its file was since replaced by hand
        return self._version(row)

    def _retire_current(self, info: Bucket, key: str, path: Path, *, replacing_null: bool) -> None:
        """Before a new current version or marker: keep the current one aside (when versioned)."""
        db = self._conn()
        bucket = info.name
        if not info.versioning:
            db.execute("DELETE FROM versions WHERE bucket = ? AND key = ?", (bucket, key))
            return
        if replacing_null:  # a suspended bucket overwrites its null version
            for row in self._rows("bucket = ? AND key = ? AND version_id = ?", (bucket, key, NULL_VERSION)):
                if row["blob"]:
                    self._blob_path(bucket, row["blob"]).unlink(missing_ok=True)
                db.execute("DELETE FROM versions WHERE seq = ?", (row["seq"],))
        current = self._current(bucket, key, path)
        db.execute("UPDATE versions SET is_latest = 0 WHERE bucket = ? AND key = ?", (bucket, key))
        if current is None or (replacing_null and current.version_id == NULL_VERSION):
            if current is not None:
                path.unlink()
            return
        blob = secrets.token_hex(16)
        target = self._blob_path(bucket, blob)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
        if self._latest_matches_row(bucket, key, current):
            db.execute(
                "UPDATE versions SET blob = ? WHERE bucket = ? AND key = ? AND version_id = ?",
                (blob, bucket, key, current.version_id),
            )
        else:  # a file written by hand becomes the version "null"; the version it overwrote is gone
            db.execute(
                "DELETE FROM versions WHERE bucket = ? AND key = ? AND blob IS NULL AND delete_marker = 0",
                (bucket, key),
            )
            db.execute(
                "DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id = ?",
                (bucket, key, NULL_VERSION),
            )
            db.execute(
                "INSERT INTO versions (bucket, key, version_id, is_latest, delete_marker, size, etag, "
                "last_modified, mtime_ns, blob, meta) VALUES (?, ?, ?, 0, 0, ?, ?, ?, 0, ?, ?)",
                (
                    bucket,
                    key,
                    NULL_VERSION,
                    current.size,
                    current.etag,
                    current.last_modified,
                    blob,
                    current.meta.to_json(),
                ),
            )

    def _latest_matches_row(self, bucket: str, key: str, current: Version) -> bool:
        rows = self._rows("bucket = ? AND key = ? AND version_id = ?", (bucket, key, current.version_id))
        return bool(rows) and rows[0]["blob"] is None and not rows[0]["delete_marker"]

    def _delete_version(self, info: Bucket, key: str, path: Path, version_id: str) -> tuple[str | None, bool]:
        db = self._conn()
        bucket = info.name
        current = self._current(bucket, key, path)
        rows = self._rows("bucket = ? AND key = ? AND version_id = ?", (bucket, key, version_id))
        if current is not None and current.version_id == version_id:
            path.unlink()
            db.execute(
                "DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id = ?",
                (bucket, key, version_id),
            )
            self._promote(bucket, key, path)
            return version_id, False
        if not rows:
            return version_id, False  # S3 answers 204 for a version that is not there
        row = rows[0]
        db.execute("DELETE FROM versions WHERE seq = ?", (row["seq"],))
        if row["blob"]:
            self._blob_path(bucket, row["blob"]).unlink(missing_ok=True)
        if row["is_latest"]:
            self._promote(bucket, key, path)
        return version_id, bool(row["delete_marker"])

    def _promote(self, bucket: str, key: str, path: Path) -> None:
        """After the latest version went: the newest remaining one becomes current."""
        rows = self._rows("bucket = ? AND key = ?", (bucket, key))
        if not rows or path.exists():
            return
        row = rows[-1]
        db = self._conn()
        db.execute("UPDATE versions SET is_latest = 1 WHERE seq = ?", (row["seq"],))
        if row["delete_marker"]:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self._blob_path(bucket, row["blob"]), path)
        db.execute(
            "UPDATE versions SET blob = NULL, mtime_ns = ? WHERE seq = ?",
            (path.stat().st_mtime_ns, row["seq"]),
        )


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f'"{digest.hexdigest()}"'
