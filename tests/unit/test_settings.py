from pathlib import Path

import pytest

from openmwaa.errors import ValidationError
from openmwaa.settings import Settings


def test_environment_variables_are_read_and_typed() -> None:
    s = Settings.from_environ(
        {
            "OPENMWAA_PORT": "9001",
            "OPENMWAA_DATA_DIR": "/tmp/x",
            "OPENMWAA_DEFAULT_ENVIRONMENT": "false",
            "OPENMWAA_REST_API_RATE": "2.5",
            "OPENMWAA_VPC_CIDRS": "10.0.0.0/8=vpc-a, 127.0.0.0/8=vpc-local",
        }
    )
    assert s.port == 9001
    assert s.data_dir == Path("/tmp/x")
    assert s.default_environment is False
    assert s.rest_api_rate == 2.5
    assert s.vpc_cidrs == {"10.0.0.0/8": "vpc-a", "127.0.0.0/8": "vpc-local"}


def test_overrides_win_over_environment() -> None:
    s = Settings.from_environ({"OPENMWAA_PORT": "9001"}, port=9002, host=None)
    assert s.port == 9002
    assert s.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPENMWAA_PORT", "eighty"),
        ("OPENMWAA_DEFAULT_ENVIRONMENT", "maybe"),
        ("OPENMWAA_VPC_CIDRS", "novalue"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings.from_environ({name: value})


def test_invalid_account_and_region_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(account_id="12")
    with pytest.raises(ValidationError):
        Settings(region="US EAST")


def test_secrets_are_not_in_repr() -> None:
    s = Settings(bootstrap_secret_access_key="s3cr3t-value", airflow_database_url="postgresql://u:pw@h/db")
    assert "s3cr3t-value" not in repr(s)
    assert "pw@h" not in repr(s)


def test_derived_locations(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.state_database_url == f"sqlite:///{tmp_path.resolve()}/openmwaa.db"
    assert s.buckets_dir == tmp_path.resolve() / "buckets"
    assert s.endpoint_url == "http://127.0.0.1:8750"


def test_the_https_listener_settings() -> None:
    s = Settings.from_environ({"OPENMWAA_TLS_PORT": "8751", "OPENMWAA_HOST": "0.0.0.0"})  # noqa: S104
    assert (s.tls_port, s.tls_endpoint_url) == (8751, "https://127.0.0.1:8751")
    assert (
        Settings(tls_port=8751, web_public_host="mwaa.example").tls_endpoint_url
        == "https://mwaa.example:8751"
    )
    assert Settings().tls_endpoint_url is None
    with pytest.raises(ValidationError, match="differ"):
        Settings(port=8750, tls_port=8750)
    with pytest.raises(ValidationError, match="out of range"):
        Settings(tls_port=70000)
    with pytest.raises(ValidationError, match="both"):
        Settings(tls_cert_file=Path("cert.pem"))


def test_distributed_mode_settings() -> None:
    s = Settings.from_environ(
        {"OPENMWAA_EXECUTOR": "celery", "OPENMWAA_CELERY_BROKER_URL": "redis://:brokerpw@h:6379/2"}
    )
    assert s.distributed and s.celery_broker_url == "redis://:brokerpw@h:6379/2"
    assert "brokerpw" not in repr(s)
    assert not Settings().distributed
    with pytest.raises(ValidationError, match="OPENMWAA_EXECUTOR"):
        Settings(executor="kubernetes")
    with pytest.raises(ValidationError, match="redis://"):
        Settings(executor="celery", celery_broker_url="amqp://h")


def test_the_restart_backoff_is_set_within_bounds() -> None:
    assert Settings.from_environ({"OPENMWAA_RESTART_BASE_DELAY": "0.25"}).restart_base_delay == 0.25
    assert Settings.from_environ({}).restart_base_delay == 1.0
    for bad in ("0", "-1", "61", "nan"):
        with pytest.raises(ValidationError, match="restart_base_delay"):
            Settings.from_environ({"OPENMWAA_RESTART_BASE_DELAY": bad})
