"""Environment lifecycle end to end: a real openmwaa server, real Airflow 3 and 2, boto3.

Also: openmwaa killed with SIGKILL in the middle of a create, an update and a delete.

create -> AVAILABLE -> trigger the example DAG through InvokeRestApi -> the run succeeds ->
update (config, environment class and a failing requirements file) -> openmwaa restarts and brings it back ->
delete -> gone, with no process or file left behind.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    AIRFLOW2,
    AIRFLOW3,
    OpenMwaaServer,
    airflow_base_url,
    airflow_healthy,
    create_environment,
    env_home,
    invoke,
    new_data_dir,
    processes_using,
    request_environment,
    start_server,
    stop_server,
    trigger_and_wait,
    wait_for_status,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenMwaaServer]:
    """A server of this module's own: the test stops and restarts it."""
    srv = start_server(new_data_dir(tmp_path_factory, "lifecycle"))
    yield srv
    stop_server(srv)


#: Prints ``value: <value>`` for each section and key given as arguments, as Airflow reads them.
READ_OPTIONS = """
import sys
from airflow.configuration import conf
for section, key in zip(sys.argv[1::2], sys.argv[2::2]):
    print("value:", conf.get(section, key))
"""


def airflow_config(home: Path, *options: tuple[str, str]) -> list[str]:
    """What Airflow itself says the options (section, key) are, asked with a running component's
    own environment: one Python importing Airflow's configuration for all of them (an Airflow
    import costs seconds of CPU).

    The scheduler's where /proc shows it whole; Airflow 2's scheduler imports setproctitle, which
    rewrites its command line and the start of its environment there, so on Airflow 2 the web
    server's (the same configuration: no startup script here).
    """
    found: list[tuple[bool, str, dict[str, str]]] = []
    for pid in processes_using(home):
        proc = Path("/proc") / str(pid)
        try:
            # A process whose title was rewritten (Airflow 2's scheduler: one string, spaces
            # between) is left out: its environment in /proc is overwritten too.
            argv = proc.joinpath("cmdline").read_bytes().decode().rstrip("\0").split("\0")
            environ = proc.joinpath("environ").read_bytes().decode().split("\0")
        except OSError:
            continue
        if argv[1:3] == ["-m", "airflow"]:  # a component, its /proc entries as started
            env = dict(item.split("=", 1) for item in environ if "=" in item)
            found.append((argv[3] != "scheduler", argv[0], env))
    if not found:
        raise AssertionError(f"no Airflow component runs for {home}")
    _, python, env = min(found, key=lambda item: item[0])
    done = subprocess.run(
        [python, "-c", READ_OPTIONS, *(part for option in options for part in option)],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    values = [line.removeprefix("value: ") for line in done.stdout.splitlines() if line.startswith("value: ")]
    assert len(values) == len(options), done.stdout
    return values


VERSIONS = [(AIRFLOW3, 3), (AIRFLOW2, 2)]


def both(check: Callable[[str, int], None]) -> None:
    """``check(version, major)`` for both versions at once, each in its own thread; re-raises."""
    with ThreadPoolExecutor(len(VERSIONS)) as pool:
        futures = [pool.submit(check, version, major) for version, major in VERSIONS]
    failures = [e for f in futures if (e := f.exception()) is not None]
    for failure in failures:
        print(f"{failure!r}")
    if failures:
        raise failures[0]


def test_create_trigger_update_restart_delete(own_server: OpenMwaaServer) -> None:
    """Both versions side by side: create, run, update (applied, then a failed one rolled back);
    openmwaa stopped, restarted and killed while they come back; then deleted."""
    server = own_server

    def create_run_and_update(version: str, major: int) -> None:
        name = f"life-{major}"
        started = time.monotonic()
        create_environment(server, name, version, Tags={"team": "data"})
        print(f"\n{name}: CreateEnvironment -> AVAILABLE in {time.monotonic() - started:.1f}s (both at once)")
        mwaa = server.client()

        env = mwaa.get_environment(Name=name)["Environment"]
        assert env["AirflowVersion"] == version
        assert env["Arn"] == f"arn:aws:airflow:us-east-1:123456789012:environment/{name}"
        assert env["Tags"] == {"team": "data"}
        assert env["LastUpdate"]["Status"] == "SUCCESS"
        assert name in mwaa.list_environments()["Environments"]
        home = env_home(server, name)
        assert processes_using(home), "the environment's Airflow processes should be running"
        # MWAA's default class, mw1.small, runs 5 tasks at once.
        assert env["EnvironmentClass"] == "mw1.small"
        assert (env["Schedulers"], env["MinWebservers"], env["MaxWebservers"]) == (2, 2, 2)
        assert airflow_config(home, ("core", "parallelism")) == ["5"]

        # The example DAG runs to success, triggered through Airflow's API.
        run = trigger_and_wait(server, name, major, "hello_openmwaa")
        assert run["state"] == "success", run

        # A DAG written to the bucket shows up within seconds.
        dag_file = server.buckets / f"bucket-{name}" / "dags" / "late_arrival.py"
        dag_file.write_text(
            (server.buckets / f"bucket-{name}" / "dags" / "hello_openmwaa.py")
            .read_text()
            .replace('dag_id="hello_openmwaa"', 'dag_id="late_arrival"')
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                invoke(server, name, "/dags/late_arrival")
                break
            except mwaa.exceptions.RestApiClientException:
                time.sleep(0.5)
        else:
            pytest.fail(f"{name}: a DAG written to the bucket did not appear in Airflow within 90 s")

        # Update: configuration options and the class's task concurrency are applied, tags are kept.
        mwaa.update_environment(
            Name=name,
            AirflowConfigurationOptions={"core.default_task_retries": "2"},
            EnvironmentClass="mw1.medium",
        )
        assert mwaa.get_environment(Name=name)["Environment"]["Status"] == "UPDATING"
        env = wait_for_status(mwaa, name, {"AVAILABLE", "UPDATE_FAILED"})
        assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
        assert env["AirflowConfigurationOptions"] == {"core.default_task_retries": "2"}
        assert env["EnvironmentClass"] == "mw1.medium"
        assert env["LastUpdate"]["Status"] == "SUCCESS"
        assert airflow_config(home, ("core", "parallelism"), ("core", "default_task_retries")) == ["10", "2"]

        # A failing update (requirements that cannot install) rolls back: previous configuration runs on.
        (server.buckets / f"bucket-{name}" / "requirements.txt").write_text(
            "openmwaa-no-such-package-xyz==9.9.9\n"
        )
        mwaa.update_environment(Name=name, RequirementsS3Path="requirements.txt")
        env = wait_for_status(mwaa, name, {"AVAILABLE", "UPDATE_FAILED"})
        assert env["Status"] == "UPDATE_FAILED"
        assert env["LastUpdate"]["Status"] == "FAILED"
        assert "openmwaa-no-such-package-xyz" in env["LastUpdate"]["Error"]["ErrorMessage"]
        assert "RequirementsS3Path" not in env, "the failed configuration must not be reported as in force"
        assert invoke(server, name, "/dags/hello_openmwaa")["RestApiStatusCode"] == 200

    both(create_run_and_update)

    # Restart openmwaa: the environments come back as they were, with no orphan left by the old
    # one (nor by one killed while starting them again).
    homes = {major: env_home(server, f"life-{major}") for _, major in VERSIONS}
    assert stop_server(server) == 0
    for home in homes.values():
        assert processes_using(home) == [], "stopping openmwaa must stop every Airflow process"
    # The InvokeRestApi timeout is raised for this server: the call made right after the restart
    # waits for Airflow within it, and on a loaded 2-core machine Airflow may take longer than the
    # default 10 s to start (the 10 s budget itself is tested in tests/api/test_invoke_errors.py).
    patient = {"OPENMWAA_REST_API_TIMEOUT": "280"}
    server.process = start_server(server.data_dir, port=server.port, extra_env=patient).process
    mwaa = server.client()
    # Airflow is starting again: the environments say MAINTENANCE, not the status they had.
    for major in homes:
        assert mwaa.get_environment(Name=f"life-{major}")["Environment"]["Status"] == "MAINTENANCE"
    # openmwaa crashes (SIGKILL) while MAINTENANCE: what it stored still leads back to the status
    # each environment had, through MAINTENANCE again.
    server.process.kill()
    server.process.wait()
    server.process = start_server(server.data_dir, port=server.port, extra_env=patient).process
    restarted_at = time.monotonic()

    def comes_back(version: str, major: int) -> None:
        name, home = f"life-{major}", homes[major]
        assert mwaa.get_environment(Name=name)["Environment"]["Status"] == "MAINTENANCE"
        # Issued right away, the first call waits for Airflow instead of failing with "could not
        # be reached".
        with ThreadPoolExecutor(1) as pool:
            first_call = pool.submit(
                lambda: server.client(read_timeout=300).invoke_rest_api(
                    Name=name, Path="/dags/hello_openmwaa", Method="GET"
                )
            )
            deadline = time.monotonic() + 300  # two environments restart at once
            while (status := mwaa.get_environment(Name=name)["Environment"]["Status"]) == "MAINTENANCE":
                assert time.monotonic() < deadline, f"{name} stayed MAINTENANCE:\n{server.log_tail()}"
                time.sleep(0.5)
            # The status it had comes back only once Airflow answers its health check.
            base = airflow_base_url(home)
            last = mwaa.get_environment(Name=name)["Environment"].get("LastUpdate")
            assert status == "UPDATE_FAILED", last
            assert base is not None and airflow_healthy(base, version)
            print(f"{name}: restart -> serving again in {time.monotonic() - restarted_at:.1f}s")
            assert first_call.result(timeout=300)["RestApiStatusCode"] == 200
        env = mwaa.get_environment(Name=name)["Environment"]
        assert env["AirflowConfigurationOptions"] == {"core.default_task_retries": "2"}
        assert "openmwaa-no-such-package-xyz" in env["LastUpdate"]["Error"]["ErrorMessage"]

    both(comes_back)

    def deleted(version: str, major: int) -> None:
        """DELETING, then gone; processes stopped and files removed."""
        name, home = f"life-{major}", homes[major]
        mwaa.delete_environment(Name=name)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                status = mwaa.get_environment(Name=name)["Environment"]["Status"]
                assert status == "DELETING"
                time.sleep(0.5)
            except mwaa.exceptions.ResourceNotFoundException:
                break
        else:
            pytest.fail(f"{name} was not deleted within 120 s")
        assert name not in mwaa.list_environments()["Environments"]
        assert processes_using(home) == []
        assert not home.exists()

    both(deleted)


def kill_9_and_restart(server: OpenMwaaServer) -> None:
    """``kill -9`` openmwaa (no clean-up of any kind), then start it again on the same data."""
    server.process.kill()
    server.process.wait()
    restarted = start_server(server.data_dir, port=server.port)
    server.process = restarted.process


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)


def serves_dag(server: OpenMwaaServer, name: str, dag_id: str = "hello_openmwaa") -> bool:
    """Whether Airflow answers for ``dag_id`` (a fresh environment parses its DAGs within seconds)."""
    try:
        return bool(invoke(server, name, f"/dags/{dag_id}")["RestApiStatusCode"] == 200)
    except server.client().exceptions.RestApiClientException as exc:
        assert exc.response["RestApiStatusCode"] == 404, exc.response
        return False


def test_kill_9_of_openmwaa_in_the_middle_of_create_update_and_delete(own_server: OpenMwaaServer) -> None:
    """openmwaa killed with SIGKILL while an environment is being created, updated, then deleted:
    after each restart the environment settles (never stuck CREATING, UPDATING or DELETING), and
    after the next clean stop no process is left."""
    server = own_server
    name = "kill-9"
    bucket = f"bucket-{name}"
    server.make_bucket(bucket)
    home = env_home(server, name)

    # Create: killed once Airflow's processes run but before the environment is AVAILABLE.
    request_environment(server, name, AIRFLOW3, bucket)
    wait_until(lambda: processes_using(home), 300, "the new environment's Airflow processes")
    assert server.client().get_environment(Name=name)["Environment"]["Status"] == "CREATING"
    kill_9_and_restart(server)
    env = wait_for_status(server.client(), name, {"AVAILABLE", "CREATE_FAILED"}, timeout=600)
    assert env["Status"] == "AVAILABLE", f"{env.get('LastUpdate')}\n{server.log_tail()}"
    wait_until(lambda: serves_dag(server, name), 120, "the example DAG after the restart")

    # Update: killed while the new configuration is being brought up.
    mwaa = server.client()
    mwaa.update_environment(Name=name, AirflowConfigurationOptions={"core.default_task_retries": "3"})
    time.sleep(2)
    assert mwaa.get_environment(Name=name)["Environment"]["Status"] == "UPDATING"
    kill_9_and_restart(server)
    mwaa = server.client()
    env = wait_for_status(mwaa, name, {"AVAILABLE", "UPDATE_FAILED"}, timeout=600)
    assert env["Status"] == "AVAILABLE", f"{env.get('LastUpdate')}\n{server.log_tail()}"
    assert env["AirflowConfigurationOptions"] == {"core.default_task_retries": "3"}
    wait_until(lambda: serves_dag(server, name), 120, "the example DAG after the restart")

    # Delete: killed while the environment's processes are being stopped.
    mwaa.delete_environment(Name=name)
    time.sleep(1)
    kill_9_and_restart(server)
    mwaa = server.client()

    def deleted() -> bool:
        try:
            status = mwaa.get_environment(Name=name)["Environment"]["Status"]
        except mwaa.exceptions.ResourceNotFoundException:
            return True
        assert status == "DELETING", status
        return False

    wait_until(deleted, 180, f"{name} to be deleted after the restart")
    assert processes_using(home) == []
    assert not home.exists()

    # The next clean stop leaves nothing behind, whatever the kills did.
    assert stop_server(server) == 0
    assert processes_using(server.data_dir) == []
