"""CreateCliToken and the CLI endpoint, as MWAA's user guide shows them: the AWS CLI and curl.

``aws mwaa create-cli-token --name <env>`` then ``curl -X POST https://{host}/aws_mwaa/cli`` with
``Authorization: Bearer <CliToken>``, ``Content-Type: text/plain`` and the Airflow command as the
body; the answer is JSON with base64 ``stdout`` and ``stderr``. curl verifies the endpoint with
openmwaa's CA (``--cacert``).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from openmwaa.runtime import versions
from openmwaa.runtime.installer import RuntimeManager
from openmwaa.services.cli_commands import ALLOWED_COMMANDS, command_options
from tests.e2e.conftest import AIRFLOW2, AIRFLOW3, OpenMwaaServer, runtime_cache

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]

AWS = str(Path(sys.executable).with_name("aws"))


def create_cli_token(server: OpenMwaaServer, name: str) -> tuple[str, str]:
    """(CliToken, WebServerHostname) from the AWS CLI."""
    done = subprocess.run(
        [AWS, "mwaa", "create-cli-token", "--name", name, "--output", "json"],
        env=server.client_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return out["CliToken"], out["WebServerHostname"]


def curl_cli(server: OpenMwaaServer, host: str, token: str | None, command: str) -> tuple[int, Any]:
    """POST ``command`` to the CLI endpoint with curl; (HTTP status, decoded JSON body)."""
    args = [
        "curl",
        "--silent",
        "--show-error",
        "--cacert",
        str(server.data_dir / "tls" / "ca.pem"),
        "-X",
        "POST",
        f"https://{host}/aws_mwaa/cli",
        "-H",
        "Content-Type: text/plain",
        "--data-raw",
        command,
        "--write-out",
        "\n%{http_code}",
    ]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_cli_endpoint_runs_dags_list(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, _major = shared_env
    token, host = create_cli_token(server, name)
    status, body = curl_cli(server, host, token, "dags list")
    assert status == 200, body
    stdout = base64.b64decode(body["stdout"]).decode()
    base64.b64decode(body["stderr"])  # present and base64, even when empty
    assert "hello_openmwaa" in stdout
    assert "on_new_signup" in stdout


def test_cli_endpoint_refuses_what_it_must(
    server: OpenMwaaServer, shared_env: tuple[str, int], af3_env: str, af2_env: str
) -> None:
    name, major = shared_env
    token, host = create_cli_token(server, name)

    for command in ("db reset", "users create --username eve --role Admin --password x", "config list"):
        status, body = curl_cli(server, host, token, command)
        assert status == 400, (command, body)
        assert "is not a supported command" in body["detail"]
        assert f"Airflow {major}" in body["detail"]
    status, body = curl_cli(server, host, token, "dags list --subdir /etc")
    assert status == 400
    assert "--subdir" in body["detail"]

    status, body = curl_cli(server, host, None, "dags list")
    assert status == 401
    assert "Bearer" in body["detail"]
    status, body = curl_cli(server, host, token[:-3] + "abc", "dags list")
    assert status == 403
    assert "not valid" in body["detail"]
    other = af2_env if name == af3_env else af3_env
    other_token, _ = create_cli_token(server, other)
    status, body = curl_cli(server, host, other_token, "version")
    assert status == 403
    assert "another environment" in body["detail"]
    web_token = server.client().create_web_login_token(Name=name)["WebToken"]
    status, body = curl_cli(server, host, web_token, "version")
    assert status == 403


#: A DAG outside the environment's DAG folder that leaves a mark when Airflow parses it.
OUTSIDE_DAG = textwrap.dedent(
    """
    from pathlib import Path

    Path(__file__).with_name("parsed").touch()

    import pendulum
    from airflow import DAG

    DAG(dag_id="outside_the_dag_folder", schedule=None, start_date=pendulum.datetime(2024, 1, 1))
    """
)


def test_cli_options_cannot_write_files_or_parse_other_folders(
    server: OpenMwaaServer, shared_env: tuple[str, int], tmp_path: Path
) -> None:
    """Options are read as Airflow's argparse reads them: prefixes and clusters cannot smuggle
    ``--save`` or ``--subdir`` in, while prefixes of allowed options still work."""
    name, _major = shared_env
    token, host = create_cli_token(server, name)

    # An abbreviation of an allowed option reaches Airflow, which expands it (--out -> --output).
    status, body = curl_cli(server, host, token, "dags list --out json")
    assert status == 200, body
    stdout = base64.b64decode(body["stdout"]).decode()
    # Airflow may log lines of its own before the JSON list of DAGs.
    listed = json.loads(next(line for line in stdout.splitlines() if line.startswith("[{")))
    assert "hello_openmwaa" in {dag["dag_id"] for dag in listed}

    # (Runtimes ship without the graphviz package, so today Airflow would fail before writing; an
    # environment that installs it from requirements.txt would write the file. The 400 is the proof.)
    saves = tmp_path / "saves"
    saves.mkdir()
    for command in (
        f"dags show hello_openmwaa --sav {saves}/x.dot",
        f"dags show hello_openmwaa --sa={saves}/x.dot",
        f"dags show hello_openmwaa -vs{saves}/x.dot",
    ):
        status, body = curl_cli(server, host, token, command)
        assert status == 400, (command, body)
        assert "--save" in body["detail"] and "writes a file" in body["detail"]
    assert sorted(saves.iterdir()) == []

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "outside_dag.py").write_text(OUTSIDE_DAG)
    for command in (
        f"dags list --subd {elsewhere}",
        f"dags list -vS{elsewhere}",
        f"dags list -o json --subdir={elsewhere}",
        f"dags list -- --subdir {elsewhere}",
    ):
        status, body = curl_cli(server, host, token, command)
        assert status == 400, (command, body)
        assert "outside_the_dag_folder" not in json.dumps(body)
    assert not (elsewhere / "parsed").exists()


def _read_cli_options(python: Path) -> dict[str, list[tuple[list[str], bool]]]:
    """Every command's options as the runtime's Airflow defines them (the table generator's reader)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "airflow_cli_options.py"
    spec = importlib.util.spec_from_file_location("airflow_cli_options", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _version, commands = module.dump(str(python))
    return dict(commands)


@pytest.mark.parametrize("version", [AIRFLOW3, AIRFLOW2])
def test_option_table_knows_every_option_of_the_installed_airflow(
    server: OpenMwaaServer, version: str, request: pytest.FixtureRequest
) -> None:
    """The CLI endpoint's option table holds every option the real CLI parser defines for each allowed
    command, with the same arity (an option it did not know would be refused, not misread)."""
    request.getfixturevalue("af3_env" if version == AIRFLOW3 else "af2_env")  # its runtime is installed
    cache = runtime_cache()
    runtime = RuntimeManager(cache).installed(version)
    assert runtime is not None, f"no runtime for {version} in {cache}"
    real = _read_cli_options(runtime.python)
    major = versions.major(version)
    for command in ALLOWED_COMMANDS[major]:
        table = command_options(command, major)
        for names, takes_value in real[" ".join(command)]:
            for option in names:
                assert option in table.takes_value, (command, option)
                assert table.takes_value[option] in (takes_value, False), (command, option)
