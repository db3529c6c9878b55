"""External-S3 mode: environments read their sources from an existing S3, not openmwaa's own.

With ``source_s3_endpoint_url`` set, environments' DAG folders are mirrored from that S3 (polled
every ``source_s3_poll_interval`` seconds, deletes included) and pinned plugins, requirements and
startup scripts are fetched by version id; openmwaa serves no S3 API of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from openmwaa.errors import ValidationError
from openmwaa.s3source.client import ExternalS3
from openmwaa.s3source.dag_sync import DagSync
from openmwaa.s3source.mirror import SourceMirror
from openmwaa.services.sources import ExternalBuckets, bucket_name
from openmwaa.settings import Settings
from openmwaa.store.environments import EnvironmentRepository

_GONE = frozenset({"DELETING", "DELETED"})


@dataclass(frozen=True)
class ExternalSource:
    buckets: ExternalBuckets
    dag_sync: DagSync


def build_external_source(settings: Settings, repository: EnvironmentRepository) -> ExternalSource | None:
    """The external S3's readers, or None when openmwaa serves its own buckets."""
    if not settings.source_s3_endpoint_url:
        return None
    s3 = ExternalS3(
        settings.source_s3_endpoint_url,
        region=settings.source_s3_region or settings.region,
        access_key_id=settings.source_s3_access_key_id,
        secret_access_key=settings.source_s3_secret_access_key,
        session_token=settings.source_s3_session_token,
    )
    mirror = SourceMirror(settings.source_mirror_dir, s3)

    def dag_folders() -> Iterator[tuple[str, str]]:
        for record in repository.list_all():
            if record.status in _GONE or (record.key.account_id, record.key.region) != (
                settings.account_id,
                settings.region,
            ):
                continue
            try:
                bucket = bucket_name(str(record.config.get("SourceBucketArn", "")))
            except ValidationError:
                continue
            dags = str(record.config.get("DagS3Path") or "").strip("/")
            if dags:
                yield bucket, dags + "/"

    return ExternalSource(
        ExternalBuckets(mirror), DagSync(mirror, dag_folders, interval=settings.source_s3_poll_interval)
    )
