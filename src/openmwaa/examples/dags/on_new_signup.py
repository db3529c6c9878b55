"""A DAG scheduled on an asset (Airflow 3) / dataset (Airflow 2): an event from outside triggers it.

Post an asset event through InvokeRestApi (Airflow 3: ``POST /assets/events`` with the asset's id;
Airflow 2: ``POST /datasets/events`` with ``dataset_uri``) and this DAG runs.
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import Asset as _Signal
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.datasets import Dataset as _Signal
    from airflow.decorators import dag, task

SIGNUPS = _Signal("openmwaa://signups")


@dag(
    dag_id="on_new_signup",
    schedule=[SIGNUPS],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["openmwaa", "example"],
)
def on_new_signup():
    @task
    def welcome() -> str:
        return "welcome!"

    welcome()


on_new_signup()
