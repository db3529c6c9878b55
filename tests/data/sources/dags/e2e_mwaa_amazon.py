"""A DAG written for MWAA: the Amazon provider's operators, hooks, sensors and secrets backend.

Parsed only (never run): it proves the runtime carries what MWAA's image carries, so a file
with these imports loads with no import error.
"""

from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook
from airflow.providers.amazon.aws.operators.lambda_function import LambdaInvokeFunctionOperator
from airflow.providers.amazon.aws.operators.s3 import S3CreateObjectOperator
from airflow.providers.amazon.aws.secrets.secrets_manager import SecretsManagerBackend
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.postgres.hooks.postgres import PostgresHook

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

assert S3Hook and SecretsManagerHook and SecretsManagerBackend and PostgresHook

with DAG(
    dag_id="e2e_mwaa_amazon", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
):
    wait = S3KeySensor(task_id="wait_for_key", bucket_name="b", bucket_key="k", aws_conn_id="aws_default")
    put = S3CreateObjectOperator(task_id="put", s3_bucket="b", s3_key="k2", data="x")
    call = LambdaInvokeFunctionOperator(task_id="call", function_name="f", payload="{}")
    wait >> put >> call
