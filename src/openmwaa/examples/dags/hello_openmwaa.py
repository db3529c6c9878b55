"""A two-task DAG that runs on Airflow 2 and Airflow 3: the default environment's example."""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task


@dag(
    dag_id="hello_openmwaa",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["openmwaa", "example"],
)
def hello_openmwaa():
    @task
    def extract() -> dict:
        return {"greeting": "hello", "target": "openmwaa"}

    @task
    def report(payload: dict) -> str:
        message = f"{payload['greeting']}, {payload['target']}"
        print(message)
        return message

    report(extract())


hello_openmwaa()
