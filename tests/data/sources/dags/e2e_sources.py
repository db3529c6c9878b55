"""Uses all three MWAA sources: plugins.zip, the startup script's exports and requirements.txt.

The plugin import is at the top, so a plugins folder Airflow cannot see is an import error of
this file. The task writes what it saw into the Variable ``e2e_sources_seen`` (JSON), which the
test reads back through InvokeRestApi (XCom paths are longer than InvokeRestApi's 64 characters).
"""

from __future__ import annotations

import importlib.util
import json
import os

import pendulum
from e2e_lib.text import shout  # from plugins.zip

try:  # Airflow 3
    from airflow.sdk import BaseHook, Variable, dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.hooks.base import BaseHook
    from airflow.models import Variable


@dag(dag_id="e2e_sources", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def e2e_sources():
    @task
    def record_what_the_task_sees(from_macro: str) -> None:
        pyjokes = None
        if importlib.util.find_spec("pyjokes") is not None:
            import pyjokes as module

            pyjokes = {"file": module.__file__, "joke": module.get_joke()}
        ssh = importlib.util.find_spec("airflow.providers.ssh")  # requirements.txt: amazon[ssh]
        # The execution role, as boto3 finds it with no configuration (and an MWAA call it allows).
        import boto3

        try:
            caller = boto3.client("sts").get_caller_identity()["Arn"]
            env_name = os.environ.get("AIRFLOW_ENV_NAME", "")
            status = (
                boto3.client("mwaa").get_environment(Name=env_name)["Environment"]["Status"]
                if env_name
                else None
            )
        except Exception as exc:  # recorded, not raised: the test reads what happened
            caller, status = type(exc).__name__, None
        seen = {
            "greeting": os.environ.get("E2E_GREETING"),
            "shouted": shout(os.environ.get("E2E_GREETING", "")),
            "from_macro": from_macro,
            "executor": os.environ.get("AIRFLOW__CORE__EXECUTOR"),
            "airflow_home": os.environ.get("AIRFLOW_HOME"),
            "pyjokes": pyjokes,
            "ssh_provider": ssh.origin if ssh else None,
            "conn_from_backend": BaseHook.get_connection("e2e_backend_conn").host,
            "caller": caller,
            "environment_status": status,
            "component": os.environ.get("MWAA_AIRFLOW_COMPONENT"),
            "by_component": {
                kind: os.environ.get(f"E2E_FROM_{kind.upper()}")
                for kind in ("scheduler", "worker", "webserver")
            },
        }
        Variable.set("e2e_sources_seen", json.dumps(seen))

    record_what_the_task_sees("{{ macros.openmwaa_e2e.shout('macro') }}")


e2e_sources()
