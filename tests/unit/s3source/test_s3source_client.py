"""External-S3 settings and client: validated, and the secret never in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmwaa.errors import ValidationError
from openmwaa.s3source.client import ExternalS3
from openmwaa.settings import Settings

SECRET = "external-secret-do-not-log-0123456789"


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {
            "OPENMWAA_DATA_DIR": str(tmp_path),
            "OPENMWAA_SOURCE_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "OPENMWAA_SOURCE_S3_ACCESS_KEY_ID": "AKIAEXTERNAL",
            "OPENMWAA_SOURCE_S3_SECRET_ACCESS_KEY": SECRET,
            "OPENMWAA_SOURCE_S3_POLL_INTERVAL": "2.5",
        }
    )
    assert settings.source_s3_poll_interval == 2.5
    assert SECRET not in repr(settings)
    client = ExternalS3(
        "http://127.0.0.1:9000", region="us-east-1", access_key_id="AKIAEXTERNAL", secret_access_key=SECRET
    )
    assert SECRET not in repr(client)


@pytest.mark.parametrize(
    "values",
    [
        {"source_s3_endpoint_url": "ftp://s3.example"},
        {"source_s3_endpoint_url": "http://s3.example", "source_s3_access_key_id": "AKIA"},
        {"source_s3_endpoint_url": "http://s3.example", "source_s3_poll_interval": 0.0},
        {"s3_max_upload_bytes": 0},
    ],
)
def test_bad_external_s3_settings_are_refused(tmp_path: Path, values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]
