"""The worker's DAG folder follows the bucket's DAG prefix, through a (fake) S3 client."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from openmwaa.errors import ValidationError
from openmwaa.wire.worker_pool import SourceObject, WorkerSources
from openmwaa.worker.sources import SourceSync, check_sources, local_path


class FakeS3:
    """Objects by key (current versions) and by (key, version); counts GetObject calls."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.versions: dict[tuple[str, str], bytes] = {}
        self.gets: list[dict[str, str]] = []

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        fake = self

        class Paginator:
            def paginate(self, *, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                keys = sorted(k for k in fake.objects if k.startswith(Prefix))
                return [
                    {"Contents": [{"Key": k, "ETag": f'"{hash(fake.objects[k])}"'} for k in keys[:2]]},
                    {"Contents": [{"Key": k, "ETag": f'"{hash(fake.objects[k])}"'} for k in keys[2:]]},
                ]

        return Paginator()

    def get_object(self, **args: str) -> dict[str, Any]:
        self.gets.append(args)
        if "VersionId" in args:
            data = self.versions[(args["Key"], args["VersionId"])]
        else:
            data = self.objects[args["Key"]]
        return {"Body": io.BytesIO(data)}


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3()


def _sync(s3: FakeS3, root: Path) -> SourceSync:
    return SourceSync(s3, WorkerSources(bucket="b", dags_prefix="dags/"), root / "dags", root / "files")


def test_new_changed_and_deleted_dags_follow_the_bucket(s3: FakeS3, tmp_path: Path) -> None:
    s3.objects = {"dags/a.py": b"a1", "dags/sub/b.py": b"b1", "dags/c.py": b"c1", "other/x.py": b"x"}
    sync = _sync(s3, tmp_path)
    assert sync.sync_dags() == 3
    assert (tmp_path / "dags" / "sub" / "b.py").read_bytes() == b"b1"
    assert not (tmp_path / "dags" / "x.py").exists()
    s3.gets.clear()
    assert sync.sync_dags() == 0 and s3.gets == []  # nothing changed: nothing fetched
    s3.objects["dags/a.py"] = b"a2"
    del s3.objects["dags/c.py"]
    assert sync.sync_dags() == 2
    assert (tmp_path / "dags" / "a.py").read_bytes() == b"a2"
    assert not (tmp_path / "dags" / "c.py").exists()


def test_files_the_worker_made_itself_are_left_alone(s3: FakeS3, tmp_path: Path) -> None:
    s3.objects = {"dags/a.py": b"a"}
    sync = _sync(s3, tmp_path)
    sync.sync_dags()
    cache = tmp_path / "dags" / "__pycache__" / "a.pyc"
    cache.parent.mkdir()
    cache.write_bytes(b"compiled")
    sync.sync_dags()
    assert cache.exists()


def test_keys_that_would_leave_the_folder_are_skipped(s3: FakeS3, tmp_path: Path) -> None:
    s3.objects = {"dags/../escape.py": b"x", "dags/ok.py": b"ok", "dags/dir/": b""}
    assert _sync(s3, tmp_path).sync_dags() == 1
    assert not (tmp_path / "escape.py").exists()
    assert (tmp_path / "dags" / "ok.py").exists()


def test_pinned_objects_are_fetched_at_their_version(s3: FakeS3, tmp_path: Path) -> None:
    s3.objects["requirements.txt"] = b"new"
    s3.versions[("requirements.txt", "v1")] = b"pinned"
    path = _sync(s3, tmp_path).fetch(SourceObject("requirements.txt", "v1"), "requirements.txt")
    assert path.read_bytes() == b"pinned"
    assert _sync(s3, tmp_path).fetch(SourceObject("requirements.txt"), "r.txt").read_bytes() == b"new"


@pytest.mark.parametrize("relative", ["", "a/", "/abs.py", "a/../b.py", "./a.py", "a//b.py", "a\x00.py"])
def test_local_path_refuses(relative: str, tmp_path: Path) -> None:
    assert local_path(tmp_path, relative) is None


def test_a_dag_prefix_must_be_a_folder_key() -> None:
    check_sources(WorkerSources(bucket="b", dags_prefix="dags/"))
    check_sources(WorkerSources(bucket="b", dags_prefix=""))
    with pytest.raises(ValidationError):
        check_sources(WorkerSources(bucket="b", dags_prefix="../dags/"))
