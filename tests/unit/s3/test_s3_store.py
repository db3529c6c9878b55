"""The bucket store: the current version is the plain file; what happens to files written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.s3.errors import NoSuchVersionError
from openmwaa.s3.store import META_DIR, NULL_VERSION, BucketStore, ObjectMeta


def _put(store: BucketStore, key: str, data: bytes) -> str:
    path, handle = store.temp_file()
    with handle:
        handle.write(data)
    return store.put("b-1", key, path, ObjectMeta(), '"e"').version_id


def test_a_file_edited_by_hand_is_the_null_version_and_is_kept_when_overwritten(tmp_path: Path) -> None:
    store = BucketStore(tmp_path)
    store.create_bucket("b-1")
    store.set_versioning("b-1", "Enabled")
    v1 = _put(store, "dags/a.py", b"v1")
    (tmp_path / "b-1" / "dags" / "a.py").write_bytes(b"edited by hand")
    current, handle = store.get("b-1", "dags/a.py")
    assert handle is not None
    with handle:
        assert handle.read() == b"edited by hand"
    assert current.version_id == NULL_VERSION
    v2 = _put(store, "dags/a.py", b"v2")
    ids = [v.version_id for v in store.list_versions("b-1", "dags/")]
    assert ids[0] == v2 and NULL_VERSION in ids
    assert store.version_path("b-1", "dags/a.py", NULL_VERSION).read_bytes() == b"edited by hand"
    # v1's bytes were overwritten in place by the edit: that version is gone, never served as v2.
    assert v1 not in ids
    with pytest.raises(NoSuchVersionError):
        store.version_path("b-1", "dags/a.py", v1)


def test_an_interrupted_upload_leaves_no_object_and_its_temp_file_goes_at_the_next_start(
    tmp_path: Path,
) -> None:
    store = BucketStore(tmp_path)
    store.create_bucket("b-1")
    path, handle = store.temp_file()
    with handle:
        handle.write(b"half an upl")  # the server is killed here, before put()
    store.close()
    assert [v.key for v in BucketStore(tmp_path).list_current("b-1", "")] == []
    assert not path.exists(), "the leftover temporary file is removed when the store opens again"
    assert (tmp_path / META_DIR / "tmp").is_dir()
