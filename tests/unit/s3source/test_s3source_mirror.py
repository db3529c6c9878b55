"""The external-S3 mirror: a DAG folder follows its prefix (new, changed, deleted), pinned
versions are fetched once, and keys that are no relative paths never reach the disk."""

from __future__ import annotations

import hashlib
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from openmwaa.s3source.client import (
    ExternalS3,
    RemoteObject,
    SourceBucketMissingError,
    SourceObjectMissingError,
)
from openmwaa.s3source.dag_sync import DagSync
from openmwaa.s3source.mirror import SourceMirror


class FakeS3:
    """A versioned bucket in memory, with ExternalS3's methods (and a count of downloads)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.versions: dict[tuple[str, str], bytes] = {}
        self.downloads = 0

    def put(self, key: str, data: bytes) -> str:
        self.objects[key] = data
        version = hashlib.sha256(data).hexdigest()[:12]
        self.versions[(key, version)] = data
        return version

    def head_bucket(self, bucket: str) -> None:
        if bucket != "src":
            raise SourceBucketMissingError(bucket)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[RemoteObject]:
        self.head_bucket(bucket)
        for key in sorted(self.objects):
            if key.startswith(prefix):
                data = self.objects[key]
                yield RemoteObject(
                    key, f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"', len(data)
                )

    def _data(self, key: str, version_id: str | None) -> bytes:
        data = self.versions.get((key, version_id)) if version_id else self.objects.get(key)
        if data is None:
            raise SourceObjectMissingError(key)
        return data

    def head_object(self, bucket: str, key: str, version_id: str | None = None) -> RemoteObject:
        data = self._data(key, version_id)
        return RemoteObject(key, f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"', len(data))

    def download(self, bucket: str, key: str, version_id: str | None, target: Path) -> None:
        self.downloads += 1
        target.write_bytes(self._data(key, version_id))


def _mirror(tmp_path: Path) -> tuple[FakeS3, SourceMirror]:
    fake = FakeS3()
    return fake, SourceMirror(tmp_path / "mirror", cast(ExternalS3, cast(Any, fake)))


def test_a_dag_folder_follows_its_prefix(tmp_path: Path) -> None:
    fake, mirror = _mirror(tmp_path)
    fake.put("dags/a.py", b"a1")
    fake.put("dags/sub/b.py", b"b1")
    fake.put("dags/folder/", b"")  # a console-made "folder"
    fake.put("requirements.txt", b"outside the prefix")
    assert mirror.sync_prefix("src", "dags/") == (2, 0)
    dags = tmp_path / "mirror" / "src" / "dags"
    assert (dags / "a.py").read_bytes() == b"a1"
    assert (dags / "sub" / "b.py").read_bytes() == b"b1"
    assert not (tmp_path / "mirror" / "src" / "requirements.txt").exists()
    assert stat.S_IMODE((dags / "a.py").stat().st_mode) == 0o644  # environments' users read it
    assert stat.S_IMODE(dags.stat().st_mode) == 0o755

    assert mirror.sync_prefix("src", "dags/") == (0, 0)  # nothing changed: nothing fetched
    downloads = fake.downloads
    fake.put("dags/a.py", b"a2")
    del fake.objects["dags/sub/b.py"]
    assert mirror.sync_prefix("src", "dags/") == (1, 1)
    assert fake.downloads == downloads + 1
    assert (dags / "a.py").read_bytes() == b"a2"
    assert not (dags / "sub").exists()  # emptied folders go too
    assert dags.is_dir()


def test_keys_that_are_not_relative_paths_are_skipped(tmp_path: Path) -> None:
    fake, mirror = _mirror(tmp_path)
    for key in ("dags/../../escape.py", "dags//x.py", "dags/./y.py"):
        fake.objects[key] = b"no"
    fake.put("dags/ok.py", b"ok")
    assert mirror.sync_prefix("src", "dags/") == (1, 0)
    assert sorted(p.name for p in (tmp_path / "mirror").rglob("*.py")) == ["ok.py"]
    assert not (tmp_path / "escape.py").exists()


def test_pinned_versions_are_fetched_once_and_unknown_ones_refused(tmp_path: Path) -> None:
    fake, mirror = _mirror(tmp_path)
    v1 = fake.put("requirements.txt", b"one\n")
    fake.put("requirements.txt", b"two\n")
    path = mirror.fetch_version("src", "requirements.txt", v1)
    assert path.read_bytes() == b"one\n"
    downloads = fake.downloads
    assert mirror.fetch_version("src", "requirements.txt", v1) == path
    assert fake.downloads == downloads
    assert mirror.fetch_current("src", "requirements.txt").read_bytes() == b"two\n"
    with pytest.raises(SourceObjectMissingError):
        mirror.fetch_version("src", "requirements.txt", "no-such-version")
    assert not any((tmp_path / "mirror" / ".tmp").iterdir())


def test_the_poller_syncs_every_folder_in_use_and_survives_failures(tmp_path: Path) -> None:
    fake, mirror = _mirror(tmp_path)
    fake.put("dags/a.py", b"a")
    sync = DagSync(mirror, lambda: [("src", "dags/"), ("missing", "dags/")], interval=60)
    sync.poll_once()  # the missing bucket is logged, the other folder still synced
    assert (tmp_path / "mirror" / "src" / "dags" / "a.py").is_file()
    del fake.objects["dags/a.py"]
    sync.poll_once()
    assert not (tmp_path / "mirror" / "src" / "dags" / "a.py").exists()


def test_the_poller_syncs_at_once_when_started(tmp_path: Path) -> None:
    """After a restart, changes made meanwhile arrive without waiting a whole interval."""
    fake, mirror = _mirror(tmp_path)
    fake.put("dags/a.py", b"a")
    sync = DagSync(mirror, lambda: [("src", "dags/")], interval=3600)
    sync.start()
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "mirror" / "src" / "dags" / "a.py").is_file():
            assert time.monotonic() < deadline, "the first poll did not run at start"
            time.sleep(0.05)
    finally:
        sync.stop()
