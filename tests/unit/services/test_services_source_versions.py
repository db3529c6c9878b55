"""``*S3ObjectVersion`` pins that exact version of a source, as MWAA does; an unknown one is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openmwaa.errors import ValidationError
from openmwaa.s3.store import BucketStore, ObjectMeta
from openmwaa.services.environments import EnvironmentService
from openmwaa.settings import Settings
from openmwaa.store.db import open_engine
from openmwaa.store.environments import EnvironmentRepository
from openmwaa.supervisor import EnvironmentEvent, EnvironmentSpec


class RecordingSupervisor:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def create(self, spec: EnvironmentSpec) -> None:
        self.calls.append(("create", spec))

    def update(self, spec: EnvironmentSpec, previous: EnvironmentSpec, **_: str) -> None:
        self.calls.append(("update", (spec, previous)))

    def resume(self, spec: EnvironmentSpec) -> None:
        self.calls.append(("resume", spec))

    def delete(self, key: str, home: Any, database_url: str | None) -> None:
        self.calls.append(("delete", key))


def params(name: str = "env", **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x",
        "SourceBucketArn": "arn:aws:s3:::my-bucket",
        "DagS3Path": "dags",
        "NetworkConfiguration": {"SubnetIds": ["a", "b"], "SecurityGroupIds": ["sg"]},
        **extra,
    }


def _put(store: BucketStore, key: str, data: bytes) -> str:
    path, handle = store.temp_file()
    with handle:
        handle.write(data)
    return store.put("my-bucket", key, path, ObjectMeta(), '"etag"').version_id


@pytest.fixture
def store(tmp_path: Path) -> BucketStore:
    store = BucketStore(tmp_path / "buckets")
    store.create_bucket("my-bucket")
    store.set_versioning("my-bucket", "Enabled")
    return store


def _service(tmp_path: Path, store: BucketStore, supervisor: RecordingSupervisor) -> EnvironmentService:
    settings = Settings(data_dir=tmp_path)
    repo = EnvironmentRepository(open_engine(settings.state_database_url))
    return EnvironmentService(
        settings=settings, repository=repo, supervisor=supervisor, clock=lambda: 1000.0, buckets=store
    )


def test_pinned_requirements_plugins_and_startup_script(tmp_path: Path, store: BucketStore) -> None:
    supervisor = RecordingSupervisor()
    service = _service(tmp_path, store, supervisor)
    v1 = _put(store, "requirements.txt", b"one==1\n")
    v2 = _put(store, "requirements.txt", b"two==2\n")
    plugins = _put(store, "plugins.zip", b"PK-old")
    _put(store, "plugins.zip", b"PK-new")
    script = _put(store, "startup.sh", b"echo pinned\n")
    service.create(
        params(
            RequirementsS3Path="requirements.txt",
            RequirementsS3ObjectVersion=v1,
            PluginsS3Path="plugins.zip",
            PluginsS3ObjectVersion=plugins,
            StartupScriptS3Path="startup.sh",
            StartupScriptS3ObjectVersion=script,
        )
    )
    _, spec = supervisor.calls[-1]
    assert spec.requirements_file.read_bytes() == b"one==1\n"  # not the current two==2
    assert spec.plugins_zip.read_bytes() == b"PK-old"
    assert spec.startup_script.read_bytes() == b"echo pinned\n"

    service.on_event(EnvironmentEvent(str(service.key("env")), "available"))
    service.update({"Name": "env", "RequirementsS3ObjectVersion": v2})
    _, (new, old) = supervisor.calls[-1]
    assert new.requirements_file.read_bytes() == b"two==2\n"
    assert old.requirements_file.read_bytes() == b"one==1\n"


def test_unknown_version_is_a_validation_error(tmp_path: Path, store: BucketStore) -> None:
    service = _service(tmp_path, store, RecordingSupervisor())
    _put(store, "requirements.txt", b"x\n")
    with pytest.raises(ValidationError, match="RequirementsS3ObjectVersion 'no-such-version'"):
        service.create(
            params(RequirementsS3Path="requirements.txt", RequirementsS3ObjectVersion="no-such-version")
        )
    with pytest.raises(ValidationError, match="PluginsS3ObjectVersion is given without PluginsS3Path"):
        service.create(params(PluginsS3ObjectVersion="abc"))


def test_a_deleted_object_keeps_its_pinned_version(tmp_path: Path, store: BucketStore) -> None:
    supervisor = RecordingSupervisor()
    service = _service(tmp_path, store, supervisor)
    v1 = _put(store, "requirements.txt", b"kept\n")
    marker, is_marker = store.delete("my-bucket", "requirements.txt", None)
    assert is_marker
    service.create(params(RequirementsS3Path="requirements.txt", RequirementsS3ObjectVersion=v1))
    _, spec = supervisor.calls[-1]
    assert spec.requirements_file.read_bytes() == b"kept\n"
    with pytest.raises(ValidationError, match="no such version"):
        service.create(
            params(name="env2", RequirementsS3Path="requirements.txt", RequirementsS3ObjectVersion=marker)
        )


def test_the_version_store_is_never_a_source_bucket(tmp_path: Path, store: BucketStore) -> None:
    service = _service(tmp_path, store, RecordingSupervisor())
    _put(store, "requirements.txt", b"x\n")  # the version store now exists beside the bucket
    with pytest.raises(ValidationError, match="does not name a bucket"):
        service.create(params(SourceBucketArn="arn:aws:s3:::.openmwaa-s3"))
