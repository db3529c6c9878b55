"""PluginsS3Path, StartupScriptS3Path and RequirementsS3Path end to end, and a crash loop.

Two environments (Airflow 3 and Airflow 2) are created once, side by side, each from a bucket
holding a plugins.zip, a startup script and one DAG (``tests/data/sources``); only the Airflow 3
one has a requirements.txt. One run of the DAG per environment records what its task saw, and
the tests below read that back through InvokeRestApi. The crash-loop test comes last: it
kills the Airflow 3 scheduler until the environment turns UNAVAILABLE, then lets it recover.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    AIRFLOW2,
    AIRFLOW3,
    OpenMwaaServer,
    env_home,
    invoke,
    request_environment,
    trigger_and_wait,
    wait_for_status,
)

pytestmark = pytest.mark.e2e

SOURCES = Path(__file__).resolve().parents[1] / "data" / "sources"
DAG_ID = "e2e_sources"
GREETING = {3: "hello from the startup script", 2: "bonjour from the startup script"}
# Reserved variables the scripts try to change; had either taken effect, Airflow would not start
# (Airflow 3 has no SequentialExecutor; Airflow 2 refuses LocalExecutor on SQLite).
FORBIDDEN_EXECUTOR = {3: "SequentialExecutor", 2: "LocalExecutor"}
EXPECTED_EXECUTOR = {3: "LocalExecutor", 2: "SequentialExecutor"}
PYJOKES = "pyjokes==0.8.3"  # pure Python, in neither Airflow runtime
# As MWAA's guide writes requirements.txt: Airflow's published constraints first (unreachable
# here; the runtime's shipped pins stand in for them), and a provider with an extra.
REQUIREMENTS = (
    '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"\n'
    f"{PYJOKES}\napache-airflow-providers-amazon[ssh]\n"
)
MWAA_DAG_ID = "e2e_mwaa_amazon"
EXECUTION_ROLE = "SourcesE2eExecution"
# A secrets backend from plugins.zip, configured as MWAA users configure SecretsManagerBackend.
SECRETS_OPTIONS = {
    "secrets.backend": "e2e_secrets.DictSecretsBackend",
    "secrets.backend_kwargs": json.dumps(
        {"connections": {"e2e_backend_conn": "http://from-the-backend:8080"}}
    ),
}


@dataclass(frozen=True)
class SourcesEnv:
    name: str
    major: int
    bucket: Path
    home: Path


def build_plugins_zip(target: Path) -> None:
    """plugins.zip as MWAA users build it: the plugins folder's contents at the archive's root."""
    root = SOURCES / "plugins"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*.py")):
            zf.write(path, path.relative_to(root).as_posix())


def startup_script(major: int) -> str:
    return (
        "#!/bin/bash\n"
        'echo "openmwaa e2e startup script ran"\n'
        f'export E2E_GREETING="{GREETING[major]}"\n'
        f"export AIRFLOW__CORE__EXECUTOR={FORBIDDEN_EXECUTOR[major]}\n"
        "export AIRFLOW_HOME=/nonexistent/airflow-home\n"
        # As MWAA's docs show: scripts branch on the component they prepare.
        'case "$MWAA_AIRFLOW_COMPONENT" in\n'
        "  scheduler) export E2E_FROM_SCHEDULER=yes ;;\n"
        "  worker) export E2E_FROM_WORKER=yes ;;\n"
        "  webserver) export E2E_FROM_WEBSERVER=yes ;;\n"
        '  *) echo "MWAA_AIRFLOW_COMPONENT is not set" >&2; exit 9 ;;\n'
        "esac\n"
    )


def delete_and_wait(server: OpenMwaaServer, names: list[str], timeout: float = 120) -> None:
    mwaa = server.client()
    for name in names:
        with contextlib.suppress(mwaa.exceptions.ResourceNotFoundException):
            mwaa.delete_environment(Name=name)
    deadline = time.monotonic() + timeout
    for name in names:
        while time.monotonic() < deadline:
            try:
                mwaa.get_environment(Name=name)
            except mwaa.exceptions.ResourceNotFoundException:
                break
            time.sleep(1)


def create_execution_role(server: OpenMwaaServer) -> str:
    """A role as MWAA's guide writes it (trusting airflow[-env].amazonaws.com), with openmwaa's CLI."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": "*"}],
    }
    cli = [sys.executable, "-m", "openmwaa", "iam", "--data-dir", str(server.data_dir)]
    for args, document in (
        (["create-role", EXECUTION_ROLE], trust),
        (["put-role-policy", EXECUTION_ROLE, "get"], policy),
    ):
        subprocess.run(
            [*cli, *args, "-"], input=json.dumps(document).encode(), check=True, capture_output=True
        )
    return f"arn:aws:iam::123456789012:role/{EXECUTION_ROLE}"


@pytest.fixture(scope="module")
def sources_envs(server: OpenMwaaServer) -> Iterator[dict[int, SourcesEnv]]:
    """An Airflow 3 and an Airflow 2 environment created from plugins, startup script (and requirements)."""
    envs: dict[int, SourcesEnv] = {}
    role_arn = create_execution_role(server)
    try:
        for version in (AIRFLOW3, AIRFLOW2):
            major = int(version[0])
            name = f"sources-af{major}"
            bucket = server.make_bucket(f"bucket-{name}", with_example_dags=False)
            for dag_id in (DAG_ID, MWAA_DAG_ID):
                (bucket / "dags" / f"{dag_id}.py").write_text((SOURCES / "dags" / f"{dag_id}.py").read_text())
            (bucket / "plugins").mkdir(exist_ok=True)
            build_plugins_zip(bucket / "plugins" / "plugins.zip")
            (bucket / "startup.sh").write_text(startup_script(major))
            extra: dict[str, Any] = {
                "PluginsS3Path": "plugins/plugins.zip",
                "StartupScriptS3Path": "startup.sh",
                "AirflowConfigurationOptions": SECRETS_OPTIONS,
            }
            if major == 3:  # the Airflow 2 environment proves requirements do not leak across environments
                (bucket / "requirements.txt").write_text(REQUIREMENTS)
                # ...and that tasks get no credentials when the execution role is not in openmwaa's IAM.
                extra["ExecutionRoleArn"] = role_arn
                extra["RequirementsS3Path"] = "requirements.txt"
            # Both start at once: on a small machine that is faster than one after the other.
            request_environment(server, name, version, bucket.name, **extra)
            envs[major] = SourcesEnv(name, major, bucket, env_home(server, name))
        mwaa = server.client()
        for env in envs.values():
            got = wait_for_status(mwaa, env.name, {"AVAILABLE", "CREATE_FAILED"})
            assert got["Status"] == "AVAILABLE", f"{got.get('LastUpdate')}\n{server.log_tail()}"
        yield envs
    finally:
        delete_and_wait(server, [env.name for env in envs.values()])


def call(server: OpenMwaaServer, name: str, path: str) -> Any:
    """GET ``path`` through InvokeRestApi, retrying while Airflow is briefly busy."""
    mwaa = server.client()
    for _ in range(5):
        try:
            return invoke(server, name, path)["RestApiResponse"]
        except mwaa.exceptions.RestApiServerException:
            time.sleep(2)
    return invoke(server, name, path)["RestApiResponse"]


def wait_for_dag(
    server: OpenMwaaServer, env: SourcesEnv, timeout: float = 120, dag_id: str = DAG_ID
) -> dict[str, Any]:
    """The DAG once it is parsed; fails at once with the stack trace if its file has an import error."""
    mwaa = server.client()
    deadline = time.monotonic() + timeout
    while True:
        errors = call(server, env.name, "/importErrors")["import_errors"]
        mine = [e for e in errors if e["filename"].endswith(f"{dag_id}.py")]
        assert not mine, f"{dag_id}.py has an import error:\n{mine[0]['stack_trace']}"
        try:
            return dict(invoke(server, env.name, f"/dags/{dag_id}")["RestApiResponse"])
        except (mwaa.exceptions.RestApiClientException, mwaa.exceptions.RestApiServerException):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


@pytest.fixture(scope="module")
def seen(server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv]) -> dict[int, dict[str, Any]]:
    """Per Airflow major: what the DAG's task saw (one successful run in each environment)."""
    result = {}
    for major, env in sources_envs.items():
        wait_for_dag(server, env)
        run = trigger_and_wait(server, env.name, major, DAG_ID)
        assert run["state"] == "success", f"{env.name}: {run}\n{log_of_task(env)}"
        result[major] = json.loads(call(server, env.name, "/variables/e2e_sources_seen")["value"])
    return result


def log_of_task(env: SourcesEnv) -> str:
    logs = sorted((env.home / "logs" / "airflow").rglob("*record_what_the_task_sees*/**/*.log"))
    return logs[-1].read_text(errors="replace")[-3000:] if logs else "(no task log found)"


@pytest.mark.parametrize("major", [3, 2], ids=["airflow3", "airflow2"])
def test_plugins_zip_is_importable_from_dags_and_its_plugin_loads(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv], seen: dict[int, dict[str, Any]], major: int
) -> None:
    env = sources_envs[major]
    config = server.client().get_environment(Name=env.name)["Environment"]
    assert config["PluginsS3Path"] == "plugins/plugins.zip"

    # The DAG imports a module from plugins.zip at parse time: it parsed without an import error.
    dag = wait_for_dag(server, env)
    assert dag["dag_id"] == DAG_ID
    # The AirflowPlugin subclass in the archive is registered, and its macro renders in a task.
    plugins = call(server, env.name, "/plugins")["plugins"]
    assert "openmwaa_e2e" in [p["name"] for p in plugins]
    assert seen[major]["from_macro"] == "MACRO!"
    # The task process imports the helper package too.
    assert seen[major]["shouted"] == GREETING[major].upper() + "!"


@pytest.mark.parametrize("major", [3, 2], ids=["airflow3", "airflow2"])
def test_startup_script_exports_reach_tasks_but_not_reserved_variables(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv], seen: dict[int, dict[str, Any]], major: int
) -> None:
    env = sources_envs[major]
    assert seen[major]["greeting"] == GREETING[major]
    # The script's AIRFLOW_HOME and executor were dropped: the run above succeeded with ours.
    assert seen[major]["executor"] == EXPECTED_EXECUTOR[major]
    assert seen[major]["airflow_home"] == str(env.home.resolve())
    # What the script prints goes to the environment's startup logs, one per run.
    for log in ("startup.log", "startup-worker.log", "startup-webserver.log"):
        assert "openmwaa e2e startup script ran" in (env.home / "logs" / log).read_text()
    # Tasks run in the scheduler's process tree: the scheduler's and the worker's exports, not the
    # web server's.
    assert seen[major]["component"] == "scheduler"
    assert seen[major]["by_component"] == {"scheduler": "yes", "worker": "yes", "webserver": None}


@pytest.mark.parametrize("major", [3, 2], ids=["airflow3", "airflow2"])
def test_a_dag_written_for_mwaa_imports_the_amazon_provider(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv], major: int
) -> None:
    dag = wait_for_dag(server, sources_envs[major], dag_id=MWAA_DAG_ID)
    assert dag["dag_id"] == MWAA_DAG_ID
    errors = call(server, sources_envs[major].name, "/importErrors")["import_errors"]
    assert errors == [], [e["stack_trace"] for e in errors]
    tasks = call(server, sources_envs[major].name, f"/dags/{MWAA_DAG_ID}/tasks")["tasks"]
    assert sorted(t["task_id"] for t in tasks) == ["call", "put", "wait_for_key"]


@pytest.mark.parametrize("major", [3, 2], ids=["airflow3", "airflow2"])
def test_a_secrets_backend_from_plugins_serves_a_connection_to_tasks(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv], seen: dict[int, dict[str, Any]], major: int
) -> None:
    options = server.client().get_environment(Name=sources_envs[major].name)["Environment"]
    assert options["AirflowConfigurationOptions"]["secrets.backend"] == SECRETS_OPTIONS["secrets.backend"]
    assert seen[major]["conn_from_backend"] == "from-the-backend"


def test_tasks_act_as_the_execution_role(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv], seen: dict[int, dict[str, Any]]
) -> None:
    # Airflow 3's role is in openmwaa's IAM and trusts the service: boto3 in the task, with no
    # configuration of its own, is that role, and its call to openmwaa was authorized by it.
    assert seen[3]["caller"] == f"arn:aws:sts::123456789012:assumed-role/{EXECUTION_ROLE}/AmazonMWAA-airflow"
    assert seen[3]["environment_status"] == "AVAILABLE"
    # Airflow 2's role (role/e2e) is not in openmwaa's IAM: no credentials, and the log says why.
    assert seen[2]["caller"] in ("CredentialRetrievalError", "NoCredentialsError")
    assert "role/e2e is not a role in openmwaa's IAM" in server.log_tail(400)


def test_requirements_are_installed_for_their_environment_only(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv], seen: dict[int, dict[str, Any]]
) -> None:
    af3 = sources_envs[3]
    assert server.client().get_environment(Name=af3.name)["Environment"]["RequirementsS3Path"] == (
        "requirements.txt"
    )
    pyjokes = seen[3]["pyjokes"]
    assert pyjokes is not None, "a task of the environment with requirements.txt cannot import pyjokes"
    assert pyjokes["joke"]
    assert Path(pyjokes["file"]).is_relative_to(af3.home.resolve()), "installed outside the environment"
    # The provider extra brought the SSH provider, installed beside pyjokes; what the runtime
    # already holds (the Amazon provider, Airflow itself) was not installed a second time.
    assert seen[3]["ssh_provider"] is not None
    assert Path(seen[3]["ssh_provider"]).is_relative_to(af3.home.resolve())
    site = Path(pyjokes["file"]).parent.parent
    assert not list(site.glob("apache_airflow-*.dist-info")) and not (site / "airflow" / "models").exists()
    assert not (site / "boto3").exists()
    assert seen[2]["ssh_provider"] is None
    # Installed per environment: not into the Airflow 3 runtime every Airflow 3 environment shares...
    scheduler = json.loads((af3.home / "run" / "scheduler.pid").read_text())["pid"]
    runtime_python = Path(f"/proc/{scheduler}/cmdline").read_bytes().split(b"\0")[0].decode()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    probe = subprocess.run(
        [runtime_python, "-c", "import pyjokes"], env=clean, capture_output=True, check=False
    )
    assert probe.returncode != 0, f"pyjokes was installed into the shared runtime {runtime_python}"
    # ...and another environment's tasks do not see it.
    assert seen[2]["pyjokes"] is None, "an environment without requirements.txt sees another's package"


def test_failing_startup_script_fails_create_and_update_with_its_output(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv]
) -> None:
    mwaa = server.client()
    failing = "#!/bin/bash\necho 'cannot reach the artifact store' >&2\nexit 3\n"

    # CreateEnvironment: CREATE_FAILED, and the error says the script failed and what it printed.
    name = "sources-bad-script"
    bucket = server.make_bucket(f"bucket-{name}")
    (bucket / "startup-failing.sh").write_text(failing)
    try:
        request_environment(server, name, AIRFLOW3, bucket.name, StartupScriptS3Path="startup-failing.sh")
        env = wait_for_status(mwaa, name, {"AVAILABLE", "CREATE_FAILED"}, timeout=180)
        assert env["Status"] == "CREATE_FAILED"
        error = env["LastUpdate"]["Error"]
        assert error["ErrorCode"] == "STARTUP_SCRIPT_FAILED"
        assert "exited with code 3" in error["ErrorMessage"]
        assert "cannot reach the artifact store" in error["ErrorMessage"]
    finally:
        delete_and_wait(server, [name])

    # UpdateEnvironment: UPDATE_FAILED; the previous configuration stays in force and keeps serving.
    af3 = sources_envs[3]
    (af3.bucket / "startup-failing.sh").write_text(failing)
    scheduler_before = json.loads((af3.home / "run" / "scheduler.pid").read_text())["pid"]
    mwaa.update_environment(Name=af3.name, StartupScriptS3Path="startup-failing.sh")
    env = wait_for_status(mwaa, af3.name, {"AVAILABLE", "UPDATE_FAILED"}, timeout=180)
    assert env["Status"] == "UPDATE_FAILED"
    assert env["LastUpdate"]["Error"]["ErrorCode"] == "STARTUP_SCRIPT_FAILED"
    assert "cannot reach the artifact store" in env["LastUpdate"]["Error"]["ErrorMessage"]
    assert env["StartupScriptS3Path"] == "startup.sh"
    assert call(server, af3.name, f"/dags/{DAG_ID}")["dag_id"] == DAG_ID
    scheduler_after = json.loads((af3.home / "run" / "scheduler.pid").read_text())["pid"]
    assert scheduler_after == scheduler_before, "a script that fails before anything restarts stops nothing"


def test_a_crash_loop_makes_the_environment_unavailable_until_it_recovers(
    server: OpenMwaaServer, sources_envs: dict[int, SourcesEnv]
) -> None:
    mwaa = server.client()
    env = sources_envs[3]
    pidfile = env.home / "run" / "scheduler.pid"

    before = mwaa.get_environment(Name=env.name)["Environment"]
    last_update = before["LastUpdate"]
    # Kill every scheduler the supervisor starts until it calls it a crash loop.
    killed: list[int] = []
    deadline = time.monotonic() + 120
    status = mwaa.get_environment(Name=env.name)["Environment"]
    while status["Status"] != "UNAVAILABLE":
        assert time.monotonic() < deadline, f"still {status['Status']} after killing {len(killed)} schedulers"
        with contextlib.suppress(OSError, ValueError):  # between a crash and the restart: no pid file
            pid = int(json.loads(pidfile.read_text())["pid"])
            if pid not in killed:
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.3)
        status = mwaa.get_environment(Name=env.name)["Environment"]
    error = status["LastUpdate"]["Error"]
    assert error["ErrorCode"] == "COMPONENT_CRASHED"
    assert "scheduler keeps crashing" in error["ErrorMessage"]
    assert {k: v for k, v in status["LastUpdate"].items() if k != "Error"} == {
        k: v for k, v in last_update.items() if k != "Error"
    }, "Status and Source still tell of the last create or update"
    reason = f"environment {env.name} is UNAVAILABLE: Airflow scheduler keeps crashing"
    assert reason in server.log_path.read_text(errors="replace")
    print(f"\n{env.name}: UNAVAILABLE after {len(killed)} scheduler kills")

    # The cause goes away (nobody kills it any more): the supervisor's restart brings it back to
    # the status it had (UPDATE_FAILED, after the failing startup script above, keeps its error).
    started = time.monotonic()
    status = wait_for_status(mwaa, env.name, {before["Status"]}, timeout=180)
    print(f"{env.name}: {before['Status']} again {time.monotonic() - started:.1f}s later")
    assert status["LastUpdate"] == last_update
    health = call(server, env.name, "/monitor/health")
    assert health["scheduler"]["status"] == "healthy"
    assert call(server, env.name, f"/dags/{DAG_ID}")["dag_id"] == DAG_ID
