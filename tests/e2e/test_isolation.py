"""What an environment's code can reach: none of the operator's variables, none of openmwaa's secrets.

One server is started with credentials in its environment (as an operator's shell often has),
and two Airflow 3 environments run in it. A task of the first lists its environment and tries
to read openmwaa's secret files, openmwaa's own ``/proc/<pid>/environ`` and the second
environment's home. Run as root (as CI does), openmwaa runs each environment as a system user
of its own, so every read must fail; otherwise only the environment variables are checked.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.services.execution_role import task_environment
from tests.e2e.conftest import (
    AIRFLOW3,
    OpenMwaaServer,
    env_home,
    new_data_dir,
    request_environment,
    start_server,
    stop_server,
    trigger_and_wait,
    wait_for_status,
)
from tests.e2e.test_environment_sources import call, delete_and_wait

pytestmark = pytest.mark.e2e

DAG = Path(__file__).resolve().parents[1] / "data" / "isolation" / "dags" / "e2e_isolation.py"
#: Secret-bearing variables the operator's shell has when it starts openmwaa.
OPERATOR_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIACANARYOPERATOR01",
    "AWS_SECRET_ACCESS_KEY": "canary-aws-secret",
    "AWS_SESSION_TOKEN": "canary-aws-session",
    "PGPASSWORD": "canary-pg-password",
    "PGHOST": "db.internal",
    "SOME_TOKEN": "canary-some-token",
    "DATABASE_URL": "postgresql://u:canary-db@db/x",
}
AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenMwaaServer, dict[str, Any]]]:
    server = start_server(new_data_dir(tmp_path_factory, "isolation"), extra_env=OPERATOR_SECRETS)
    names = ["iso-a", "iso-b"]
    try:
        data = server.data_dir
        targets = [
            str(data / name) for name in ("master.key", "iam.yaml", "openmwaa.db", "credentials", "config")
        ]
        targets += [str(data / "tls" / name) for name in ("ca-key.pem", "server-key.pem")]
        targets += [str(env_home(server, "iso-b")), str(env_home(server, "iso-b") / "airflow.db")]
        targets.append(f"/proc/{server.process.pid}/environ")
        for name in names:
            bucket = server.make_bucket(f"bucket-{name}", with_example_dags=False)
            (bucket / "dags" / DAG.name).write_text(DAG.read_text())
            (bucket / "dags" / "targets.json").write_text(json.dumps(targets))
            request_environment(server, name, AIRFLOW3, bucket.name)
        for name in names:
            got = wait_for_status(server.client(), name, {"AVAILABLE", "CREATE_FAILED"})
            assert got["Status"] == "AVAILABLE", f"{got.get('LastUpdate')}\n{server.log_tail()}"
        run = trigger_and_wait(server, "iso-a", 3, "e2e_isolation")
        assert run["state"] == "success", run
        seen = json.loads(call(server, "iso-a", "/variables/e2e_isolation_seen")["value"])
        missing = [t for t in targets if not Path(t).exists()]
        assert not missing, f"the test meant to read files that do not exist: {missing}"
        # The web token key is derived from master.key: no second key file to read.
        assert not (data / "web-token.key").exists()
        yield server, seen
    finally:
        delete_and_wait(server, names)
        stop_server(server)


def test_a_task_sees_none_of_the_operators_variables(isolated: tuple[OpenMwaaServer, dict[str, Any]]) -> None:
    _, seen = isolated
    environ: dict[str, str] = seen["environ"]
    assert not OPERATOR_SECRETS.keys() & environ.keys()
    leaked = [k for k, v in environ.items() if any(s in v for s in OPERATOR_SECRETS.values())]
    assert not leaked
    assert not [k for k in environ if k.startswith(("PG", "OPENMWAA_BOOTSTRAP"))]
    # The only AWS_* a task has are openmwaa's own: its execution role's (container credentials).
    aws = {k for k in environ if k.startswith("AWS_")}
    assert aws <= set(task_environment(EnvironmentSecrets.generate(), name="x", api_url="u", region="r"))
    assert environ["HOME"] == environ["AIRFLOW_HOME"]


@pytest.mark.skipif(
    not AS_ROOT, reason="each environment gets a user of its own only when openmwaa runs as root"
)
def test_a_task_reads_none_of_openmwaas_secrets_nor_another_environments_home(
    isolated: tuple[OpenMwaaServer, dict[str, Any]],
) -> None:
    server, seen = isolated
    reads = dict(seen["reads"])
    assert len(reads) == 10 and all(result == "PermissionError" for result in reads.values()), reads
    assert seen["uid"] != 0 and 0 not in seen["groups"]
    homes = [env_home(server, name) for name in ("iso-a", "iso-b")]
    owners = [pwd.getpwuid(home.stat().st_uid).pw_name for home in homes]
    assert owners[0] != owners[1] and all(o.startswith("omw-") for o in owners)
    assert pwd.getpwnam(owners[0]).pw_uid == seen["uid"]
    assert all(stat.S_IMODE(home.stat().st_mode) == 0o700 for home in homes)
