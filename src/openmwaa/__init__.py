"""openmwaa: Amazon MWAA's API, self-hosted, with real Apache Airflow behind it."""

__version__ = "0.1.0"
