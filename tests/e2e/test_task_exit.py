"""openmwaa_airflow.task_exit against the real Task SDK: its supervisor still has what the wrapper
reads and wraps, and installing it wraps that method once. (What the wrapper does is in
tests/unit/airflow_plugin/test_task_exit.py; Celery workers install it, and every Airflow 3 task
of tests/e2e/test_distributed.py runs under it.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from openmwaa.runtime.airflow_config import airflow_plugin_dir
from openmwaa.runtime.installer import RuntimeManager
from tests.e2e.conftest import AIRFLOW3, runtime_cache

pytestmark = pytest.mark.e2e

CHECK = """
import inspect
import attrs
from airflow.sdk.execution_time import supervisor
from openmwaa_airflow import task_exit

watched = supervisor.WatchedSubprocess
params = list(inspect.signature(watched._service_subprocess).parameters)
assert params[:2] == ["self", "max_wait_time"], params
fields = attrs.fields_dict(watched)
assert {"selector", "_exit_code", "_process"} <= set(fields), sorted(fields)
original = watched._service_subprocess
assert task_exit.install() and task_exit.install()
assert watched._service_subprocess is not original
assert watched._service_subprocess.__wrapped__ is original  # wrapped once, not twice
assert supervisor.ActivitySubprocess._service_subprocess is watched._service_subprocess
print("ok")
"""


def test_the_task_sdk_supervisor_is_wrapped_once(tmp_path: Path) -> None:
    runtime = RuntimeManager(runtime_cache()).ensure(AIRFLOW3, progress=lambda _message: None)
    python = Path(runtime.root) / "bin" / "python"
    env = {"PYTHONPATH": str(airflow_plugin_dir()), "AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(python), "-c", CHECK], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
