"""Reading MWAA's package lists: the bill of materials, the bootstrap script, the Dockerfile."""

from __future__ import annotations

import pytest

from openmwaa.runtime.mwaa_repository import (
    parse_bill_of_materials,
    parse_python,
    parse_required_packages,
)

SP = "/usr/local/airflow/.local/lib/python3.12/site-packages"
BOM = f"""This Docker image includes the following third-party software/licensing:
Flask-Login
0.6.3
MIT License
https://github.com/maxcountryman/flask-login
{SP}/Flask_Login-0.6.3.dist-info/LICENSE
Copyright (c) 2011 Matthew Frazier

MIT
1.0
is not a package: license text with a blank line before it,
see https://example.com
UNKNOWN
UNKNOWN

apache-airflow
2.10.1
Apache Software License
https://airflow.apache.org/
{SP}/airflow/www/static/dist/swagger-ui/LICENSE

                                 Apache License
UNKNOWN
UNKNOWN

fluent-logger
0.11.1
Copyright (C) 2011 FURUHASHI Sadayuki

   Licensed under the Apache License, Version 2.0
https://github.com/fluent/fluent-logger-python
{SP}/fluent_logger-0.11.1.dist-info/licenses/COPYING
text

zope.interface
7.0.3
ZPL 2.1
https://github.com/zopefoundation/zope.interface
UNKNOWN
UNKNOWN
UNKNOWN
"""


def test_bill_of_materials_lists_every_package_once_with_its_version() -> None:
    assert parse_bill_of_materials(BOM) == {
        "flask-login": "0.6.3",
        "apache-airflow": "2.10.1",
        "fluent-logger": "0.11.1",  # license over several lines: found by its dist-info path
        "zope-interface": "7.0.3",  # no license file: found by its block
    }


SCRIPT = """#!/bin/bash
set -e
REQUIRED_PACKAGES=(
    "apache-airflow-providers-amazon[aiobotocore]"
    "apache-airflow[celery,statsd]==${AIRFLOW_VERSION}"
    psycopg2   # compiled
    'boto3-stubs[logs]'
)
safe-pip-install -c "${AIRFLOW_CONSTRAINTS_FILE}" "${REQUIRED_PACKAGES[@]}"
"""


def test_required_packages_are_the_scripts_array_with_the_version_filled_in() -> None:
    assert parse_required_packages(SCRIPT, "2.11.2") == (
        "apache-airflow-providers-amazon[aiobotocore]",
        "apache-airflow[celery,statsd]==2.11.2",
        "psycopg2",
        "boto3-stubs[logs]",
    )
    with pytest.raises(ValueError, match="REQUIRED_PACKAGES"):
        parse_required_packages("pip install x", "2.11.2")


def test_python_is_the_dockerfiles_minor_version() -> None:
    assert parse_python("FROM al2023\nENV AIRFLOW_VERSION=2.11.2\nENV PYTHON_VERSION=3.12.10\n") == "3.12"
    with pytest.raises(ValueError, match="PYTHON_VERSION"):
        parse_python("FROM al2023\n")
