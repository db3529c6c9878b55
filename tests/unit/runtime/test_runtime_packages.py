"""MWAA's package set per Airflow version."""

from __future__ import annotations

import pytest

from openmwaa.runtime.packages import mwaa_python, required_packages


def test_airflow_2_gets_mwaas_common_set() -> None:
    packages = required_packages("2.11.2")
    assert packages[0] == "apache-airflow[celery,statsd]==2.11.2"
    assert "apache-airflow-providers-amazon[aiobotocore]" in packages
    assert "apache-airflow-providers-postgres" in packages
    assert "watchtower" in packages and "virtualenv" in packages
    assert not any("providers-fab" in p or "providers-standard" in p for p in packages)


@pytest.mark.parametrize(("version", "gunicorn"), [("3.0.6", False), ("3.2.1", True), ("3.3.1", True)])
def test_airflow_3_adds_fab_standard_and_from_3_2_gunicorn(version: str, gunicorn: bool) -> None:
    packages = required_packages(version)
    assert "apache-airflow-providers-fab" in packages
    assert "apache-airflow-providers-standard" in packages
    assert (f"apache-airflow-core[gunicorn]=={version}" in packages) is gunicorn


def test_mwaa_pythons() -> None:
    assert mwaa_python("2.7.2") == "3.11"
    assert mwaa_python("2.11.2") == "3.12"  # MWAA's 2.11 images moved to Python 3.12
    assert mwaa_python("3.3.1") == "3.12"
