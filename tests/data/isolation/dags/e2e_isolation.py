"""What a task can see of the machine: its environment variables, and which secrets it can read.

The test puts ``targets.json`` beside this file (paths of openmwaa's secrets and of another
environment's home). The task tries each and writes what it saw into the Variable
``e2e_isolation_seen`` (JSON), which the test reads back through InvokeRestApi.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum

try:  # Airflow 3
    from airflow.sdk import Variable, dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.models import Variable


def try_to_read(path: str) -> str:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as handle:
                handle.read(1)
    except OSError as exc:
        return type(exc).__name__
    return "read"


@dag(dag_id="e2e_isolation", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def e2e_isolation():
    @task
    def record_what_the_task_can_reach() -> None:
        targets = json.loads((Path(__file__).parent / "targets.json").read_text())
        seen = {
            "uid": os.getuid(),
            "groups": os.getgroups(),
            "environ": dict(os.environ),
            # Pairs, not a mapping: Airflow masks values under keys that look secret ("...token.key").
            "reads": [[path, try_to_read(path)] for path in targets],
        }
        Variable.set("e2e_isolation_seen", json.dumps(seen))

    record_what_the_task_can_reach()


e2e_isolation()
