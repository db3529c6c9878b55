"""The Airflow Amazon provider's ``MwaaHook.invoke_rest_api`` against openmwaa, unchanged.

The hook runs in its own virtual environment (Airflow 3.3.1 + apache-airflow-providers-amazon),
made with uv on first use and cached in ``~/.cache/openmwaa/test-venvs/mwaa-hook``. It reaches
openmwaa the way a user would point it anywhere: an ``aws_default`` connection from
``AIRFLOW_CONN_AWS_DEFAULT`` and the standard ``AWS_*`` variables (``AWS_ENDPOINT_URL``,
``AWS_DISABLE_HOST_PREFIX_INJECTION``, credentials, region), which botocore reads itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OpenMwaaServer, invoke
from tests.e2e.mwaa_hook_venv import mwaa_hook_python

pytestmark = pytest.mark.e2e


HOOK_SCRIPT = """
import json, sys
from botocore.exceptions import ClientError
from airflow.providers.amazon.aws.hooks.mwaa import MwaaHook

env_name = sys.argv[1]
hook = MwaaHook()  # aws_conn_id="aws_default"
out = {}
listed = hook.invoke_rest_api(env_name=env_name, path="/dags", method="GET", query_params={"paused": False})
dag_ids = [d["dag_id"] for d in listed["RestApiResponse"]["dags"]]
out["list"] = {"status": listed["RestApiStatusCode"], "dag_ids": dag_ids}
created = hook.invoke_rest_api(
    env_name=env_name, path="/variables", method="POST",
    body={"key": "mwaa-hook-key", "value": "set by MwaaHook", "description": "MwaaHook e2e"},
)
out["create"] = {"status": created["RestApiStatusCode"], "key": created["RestApiResponse"]["key"]}
try:
    hook.invoke_rest_api(env_name=env_name, path="/dags/no_such_dag", method="GET")
except ClientError as exc:
    out["missing"] = {"code": exc.response["Error"]["Code"], "status": exc.response["RestApiStatusCode"]}
print("RESULT " + json.dumps(out))
"""


def test_mwaa_hook_invoke_rest_api(server: OpenMwaaServer, af3_env: str, tmp_path: Path) -> None:
    python = mwaa_hook_python()
    try:
        invoke(server, af3_env, "/variables/mwaa-hook-key", "DELETE")
    except server.client().exceptions.RestApiClientException:
        pass  # not there yet
    invoke(server, af3_env, "/dags/hello_openmwaa", "PATCH", Body={"is_paused": False})
    env = server.client_env()
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow-home"),
        AIRFLOW_CONN_AWS_DEFAULT="aws://",
        AIRFLOW__CORE__LOAD_EXAMPLES="false",
        PYTHONPATH="",
    )
    result = subprocess.run(
        [str(python), "-c", HOOK_SCRIPT, af3_env],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    out: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    assert out["list"]["status"] == 200
    assert "hello_openmwaa" in out["list"]["dag_ids"]
    assert out["create"] == {"status": 201, "key": "mwaa-hook-key"}
    assert out["missing"] == {"code": "RestApiClientException", "status": 404}
    stored = invoke(server, af3_env, "/variables/mwaa-hook-key")["RestApiResponse"]
    assert (stored["key"], stored["value"]) == ("mwaa-hook-key", "set by MwaaHook")
