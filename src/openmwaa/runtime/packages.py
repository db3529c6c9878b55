"""What a runtime holds beside Airflow: the packages MWAA's image installs for that version.

MWAA's image installs, against Airflow's constraints (its bootstrap step
``02-airflow/001-install-required-pip-packages.sh`` in aws/amazon-mwaa-docker-images):
``apache-airflow[celery,statsd]``, ``apache-airflow-providers-amazon[aiobotocore]``,
``apache-airflow-providers-postgres``, ``celery[sqs]``, ``boto3-stubs[logs]``, ``boto3-stubs[sqs]``,
``psycopg2``, ``pycurl``, ``watchtower``, ``fluent-logger`` and ``virtualenv``; on Airflow 3 also
``apache-airflow-providers-fab`` and ``apache-airflow-providers-standard``, and from 3.2 on
``apache-airflow-core[gunicorn]``. The versions come from MWAA's image where it has one
(:mod:`openmwaa.runtime.mwaa_image`), through the shipped constraints.

openmwaa differs where a package cannot install from the package index alone on a plain machine
or does nothing here: ``psycopg2-binary`` instead of ``psycopg2`` (which compiles against libpq's
headers), and no ``celery[sqs]`` and ``pycurl`` (Celery's SQS transport, which openmwaa does not
use; pycurl compiles against libcurl's headers where no wheel exists). ``asyncpg`` is added for
Airflow 3's asynchronous PostgreSQL engine.
"""

from __future__ import annotations

from typing import Final

from openmwaa.runtime.mwaa_image import mwaa_image
from openmwaa.runtime.versions import version_tuple

#: The Python MWAA runs an Airflow major on where the data has no image for the version.
MWAA_PYTHON: Final = {2: "3.11", 3: "3.12"}

_COMMON: Final = (
    "apache-airflow-providers-amazon[aiobotocore]",
    "apache-airflow-providers-postgres",
    "boto3-stubs[logs,sqs]",
    "watchtower",
    "fluent-logger",
    "virtualenv",
    "psycopg2-binary",
    "asyncpg",
)


def required_packages(version: str) -> tuple[str, ...]:
    """The requirements a runtime for Airflow ``version`` is installed from (with its constraints)."""
    major, minor, _ = version_tuple(version)
    packages = [f"apache-airflow[celery,statsd]=={version}", *_COMMON]
    if major >= 3:
        packages += ["apache-airflow-providers-fab", "apache-airflow-providers-standard"]
        if minor >= 2:
            packages.append(f"apache-airflow-core[gunicorn]=={version}")
    return tuple(packages)


def mwaa_python(version: str) -> str:
    """The Python MWAA runs Airflow ``version`` on: its image's, else the major's usual one."""
    image = mwaa_image(version)
    return image.python if image is not None else MWAA_PYTHON[version_tuple(version)[0]]
