"""A real openmwaa server (a child process running ``openmwaa up``) and real AWS clients pointed at it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from openmwaa.runtime.versions import major
from openmwaa.settings import default_cache_dir
from openmwaa.supervisor.health import HEALTH_PATH, evaluate_health

ACCESS_KEY = "AKIAOPENMWAATEST0001"
SECRET_KEY = "openmwaa-test-secret-key-0000000000000000"
REGION = "us-east-1"
#: The account every e2e identity belongs to (what the servers' identities file names).
ACCOUNT = "123456789012"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "src" / "openmwaa" / "examples" / "dags"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrottleClock:
    """When the tests last called InvokeRestApi, so a throttle test can wait for a full token bucket.

    openmwaa's bucket (10 calls a second, a burst of 10 per environment and account) is full again
    one second after the last call it admitted; this waits exactly until then, not a fixed time.
    """

    REFILL_SECONDS = 1.0

    def __init__(self) -> None:
        self._last = 0.0

    def watch(self, client: Any) -> Any:
        if client.meta.service_model.service_name == "mwaa":
            client.meta.events.register("after-call.mwaa.InvokeRestApi", self._called)
        return client

    def _called(self, **_: Any) -> None:
        self._last = time.monotonic()

    def wait_for_full_bucket(self) -> None:
        time.sleep(max(0.0, self._last + self.REFILL_SECONDS - time.monotonic()))


throttle_clock = ThrottleClock()


@dataclass
class OpenMwaaServer:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def buckets(self) -> Path:
        return self.data_dir / "buckets"

    def client_env(self) -> dict[str, str]:
        """What a user exports to point unchanged boto3 / aws code at openmwaa."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENMWAA_"))}
        env.update(
            AWS_ENDPOINT_URL=self.endpoint_url,
            AWS_DISABLE_HOST_PREFIX_INJECTION="true",
            AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_CONFIG_FILE=str(self.data_dir / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "no-aws-credentials"),
        )
        return env

    def client(self, service: str = "mwaa", *, read_timeout: float = 60, **kwargs: Any) -> Any:
        config = kwargs.pop(
            "config",
            Config(inject_host_prefix=False, retries={"max_attempts": 1}, read_timeout=read_timeout),
        )
        return throttle_clock.watch(
            boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id=kwargs.pop("aws_access_key_id", ACCESS_KEY),
                aws_secret_access_key=kwargs.pop("aws_secret_access_key", SECRET_KEY),
                config=config,
                **kwargs,
            )
        )

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def make_bucket(self, name: str, *, with_example_dags: bool = True) -> Path:
        bucket = self.buckets / name
        (bucket / "dags").mkdir(parents=True, exist_ok=True)
        if with_example_dags:
            for dag in EXAMPLE_DAGS.glob("*.py"):
                shutil.copy(dag, bucket / "dags" / dag.name)
        return bucket


_SCRATCH: list[Path] = []


def runtime_cache() -> Path:
    """Where the servers the tests start keep their Airflow runtimes: ``OPENMWAA_RUNTIME_DIR`` if
    set (start_server passes it on), else the machine's cache, as openmwaa's settings read it."""
    return Path(os.environ.get("OPENMWAA_RUNTIME_DIR") or default_cache_dir())


def env_home(server: OpenMwaaServer, name: str) -> Path:
    """Environment ``name``'s home in the server's data directory (Airflow's home, its logs, pid
    files and, on SQLite, its metadata database ``airflow.db``)."""
    return server.data_dir / "environments" / ACCOUNT / REGION / name


def new_data_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """An empty data directory for a server.

    As root, openmwaa runs each environment as a user of its own, which must reach its home and
    bucket inside the data directory; pytest keeps its temporary root private to root (and makes
    it so again whenever a pytest run starts), so then the directory goes into the system's
    temporary folder instead, and is removed at the end of the session.
    """
    if os.geteuid() != 0:
        return tmp_path_factory.mktemp(name)
    path = Path(tempfile.mkdtemp(prefix=f"openmwaa-e2e-{name}-"))
    _SCRATCH.append(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _remove_data_dirs() -> Iterator[None]:
    yield
    for path in _SCRATCH:
        shutil.rmtree(path, ignore_errors=True)


def start_server(
    data_dir: Path, *, port: int | None = None, extra_env: dict[str, str] | None = None
) -> OpenMwaaServer:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENMWAA_")}
    env.update(
        OPENMWAA_DATA_DIR=str(data_dir),
        OPENMWAA_PORT=str(port),
        OPENMWAA_DEFAULT_ENVIRONMENT="false",
        OPENMWAA_BOOTSTRAP_ACCESS_KEY_ID=ACCESS_KEY,
        OPENMWAA_BOOTSTRAP_SECRET_ACCESS_KEY=SECRET_KEY,
        # One web server per environment (MinWebservers says 2 for mw1.small): the second costs
        # CPU and memory that tests of anything else do not need; the replica tests lift it.
        OPENMWAA_WEB_SERVERS_LIMIT="1",
    )
    if os.environ.get("OPENMWAA_RUNTIME_DIR"):
        env["OPENMWAA_RUNTIME_DIR"] = os.environ["OPENMWAA_RUNTIME_DIR"]
    env.update(extra_env or {})
    log_path = data_dir / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "openmwaa", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = OpenMwaaServer(data_dir, port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"openmwaa exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"openmwaa did not listen on {port}:\n{server.log_tail()}")


def stop_server(server: OpenMwaaServer, timeout: float = 60) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return int(server.process.returncode)


def processes_using(path: Path) -> list[int]:
    """PIDs whose command line or environment mentions ``path`` (leftover Airflow processes)."""
    needle = str(path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes() or needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def describe_processes(pids: list[int]) -> str:
    """One line per PID: its parent, state and command line (for a failure message)."""
    lines = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        lines.append(f"  pid {pid} ppid {fields[1]} state {fields[0]}: {cmdline[:300]}")
    return "\n".join(lines)


def airflow_base_url(home: Path) -> str | None:
    """``http://127.0.0.1:<port>`` of the Airflow API or web server running for the environment in
    ``home``, read from its processes' environment (None while none runs)."""
    names = (b"AIRFLOW__API__PORT=", b"AIRFLOW__WEBSERVER__WEB_SERVER_PORT=")
    for pid in processes_using(home):
        try:
            variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for variable in variables:
            for name in names:
                if variable.startswith(name):
                    return f"http://127.0.0.1:{int(variable[len(name) :])}"
    return None


def airflow_healthy(base: str, version: str) -> bool:
    """Airflow's own health endpoint at ``base`` answers, and says every component is healthy."""
    try:
        body = httpx.get(base + HEALTH_PATH[major(version)], timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return evaluate_health(body, major(version)).healthy


#: The shared server's Prometheus scrape token (``GET /metrics`` is off without one).
METRICS_TOKEN = "e2e-metrics-scrape-token-0123456789"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenMwaaServer]:
    srv = start_server(
        new_data_dir(tmp_path_factory, "openmwaa"),
        # Container metrics every 10 s rather than every minute: the metrics tests read them. A
        # crashed component restarts after 0.25, 0.5, 1, 2 s rather than 1, 2, 4, 8 s (the crash
        # loop test: the same five crashes in two minutes make it UNAVAILABLE).
        extra_env={
            "OPENMWAA_METRICS_TOKEN": METRICS_TOKEN,
            "OPENMWAA_METRICS_SAMPLE_INTERVAL": "10",
            "OPENMWAA_RESTART_BASE_DELAY": "0.25",
        },
    )
    yield srv
    stop_server(srv)


def wait_for_status(mwaa: Any, name: str, wanted: set[str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    env: dict[str, Any] = {}
    while time.monotonic() < deadline:
        env = mwaa.get_environment(Name=name)["Environment"]
        if env["Status"] in wanted:
            return env
        time.sleep(1)
    raise AssertionError(f"{name} stayed {env.get('Status')} (wanted {wanted}): {env.get('LastUpdate')}")


AIRFLOW3 = "3.3.1"
AIRFLOW2 = "2.11.2"


def request_environment(server: OpenMwaaServer, name: str, version: str, bucket: str, **extra: Any) -> None:
    """CreateEnvironment with the DAG folder ``dags`` of an existing bucket (does not wait).

    The execution role is ``role/e2e`` (not in openmwaa's IAM) unless ``extra`` names another.
    """
    request: dict[str, Any] = {
        "Name": name,
        "AirflowVersion": version,
        "SourceBucketArn": f"arn:aws:s3:::{bucket}",
        "DagS3Path": "dags",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/e2e",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-a"]},
    }
    server.client().create_environment(**{**request, **extra})


def create_environment(
    server: OpenMwaaServer, name: str, version: str, *, bucket: str | None = None, **extra: Any
) -> str:
    """An environment with the bundled example DAGs, AVAILABLE (or an AssertionError saying why not)."""
    bucket = bucket or f"bucket-{name.lower()}"
    server.make_bucket(bucket)
    request_environment(server, name, version, bucket, **extra)
    mwaa = server.client()
    env = wait_for_status(mwaa, name, {"AVAILABLE", "CREATE_FAILED"})
    if env["Status"] != "AVAILABLE":
        raise AssertionError(f"{name} ({version}) failed: {env.get('LastUpdate')}\n{server.log_tail()}")
    wait_for_example_dags(server, name)
    return name


def wait_for_example_dags(server: OpenMwaaServer, name: str, timeout: float = 120) -> None:
    """Until Airflow has parsed the bundled example DAGs: AVAILABLE says the components are
    healthy, not that the DAG processor has been through the folder yet."""
    mwaa = server.client()
    deadline = time.monotonic() + timeout
    for path in sorted(EXAMPLE_DAGS.glob("*.py")):
        while True:
            try:
                invoke(server, name, f"/dags/{path.stem}")
                break
            except (mwaa.exceptions.RestApiClientException, mwaa.exceptions.RestApiServerException):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name}: {path.stem} was not parsed in {timeout:.0f} s") from None
                time.sleep(0.5)


#: Every MWAA log module on at INFO (Airflow's own default level): the shared environments' logs
#: are served as CloudWatch groups airflow-<Env>-<Module>.
ALL_LOGS = {
    module: {"Enabled": True, "LogLevel": "INFO"}
    for module in ("DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs")
}


@pytest.fixture(scope="session")
def shared_envs(server: OpenMwaaServer) -> dict[str, str]:
    """Airflow version -> the AVAILABLE environment of that version shared by the e2e tests; both
    are created at the same time, when the first test needs either."""
    names = {AIRFLOW3: "shared-af3", AIRFLOW2: "shared-af2"}
    with ThreadPoolExecutor(len(names)) as pool:
        futures = {
            version: pool.submit(create_environment, server, name, version, LoggingConfiguration=ALL_LOGS)
            for version, name in names.items()
        }
        return {version: future.result() for version, future in futures.items()}


@pytest.fixture(scope="session")
def af3_env(shared_envs: dict[str, str]) -> str:
    """An AVAILABLE Airflow 3 environment shared by the e2e tests (read-mostly: don't delete it)."""
    return shared_envs[AIRFLOW3]


@pytest.fixture(scope="session")
def af2_env(shared_envs: dict[str, str]) -> str:
    """An AVAILABLE Airflow 2 environment shared by the e2e tests (read-mostly: don't delete it)."""
    return shared_envs[AIRFLOW2]


@pytest.fixture(params=[AIRFLOW3, AIRFLOW2], ids=["airflow3", "airflow2"])
def shared_env(request: pytest.FixtureRequest) -> tuple[str, int]:
    """(environment name, Airflow major) for each shared environment in turn."""
    fixture = "af3_env" if request.param == AIRFLOW3 else "af2_env"
    return request.getfixturevalue(fixture), int(request.param.split(".")[0])


def aws_cli_json(server: OpenMwaaServer, *args: str, timeout: float = 120) -> dict[str, Any]:
    """The AWS CLI, unchanged, with only the endpoint variables a user exports; its JSON output."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "aws"), *args, "--output", "json"],
        env=server.client_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def wait_until_known(
    server: OpenMwaaServer, access_key_id: str, secret_access_key: str, timeout: float = 10
) -> None:
    """Until the running server has reloaded the identities file with this access key in it
    (it re-reads the file at most once a second)."""
    sts = server.client("sts", aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sts.get_caller_identity()
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidClientTokenId" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def invoke(server: OpenMwaaServer, name: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
    return server.client().invoke_rest_api(Name=name, Path=path, Method=method, **kwargs)


def trigger_and_wait(
    server: OpenMwaaServer, name: str, major: int, dag_id: str, timeout: float = 180
) -> dict[str, Any]:
    """Unpause ``dag_id``, trigger it through InvokeRestApi and poll the run to a final state."""
    mwaa = server.client()
    # A short run id of our own: InvokeRestApi paths are at most 64 characters, Airflow's own ids are long.
    body: dict[str, Any] = {"dag_run_id": f"e2e-{uuid.uuid4().hex[:12]}"}
    if major == 3:
        body["logical_date"] = None
    deadline = time.monotonic() + 90
    while True:  # the DAG may not be parsed yet right after the environment became AVAILABLE
        try:
            invoke(server, name, f"/dags/{dag_id}", "PATCH", Body={"is_paused": False})
            run = invoke(server, name, f"/dags/{dag_id}/dagRuns", "POST", Body=body)["RestApiResponse"]
            break
        except (mwaa.exceptions.RestApiClientException, mwaa.exceptions.RestApiServerException) as exc:
            if exc.response.get("RestApiStatusCode") == 409:  # an earlier attempt did create it
                run = {"dag_run_id": body["dag_run_id"]}
                break
            # Not parsed yet (404), or Airflow slow on a loaded machine (timeout): try again.
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    run_id = run["dag_run_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = invoke(server, name, f"/dags/{dag_id}/dagRuns/{run_id}")["RestApiResponse"]
        except mwaa.exceptions.RestApiServerException:
            time.sleep(1)
            continue
        if state["state"] in ("success", "failed"):
            return dict(state)
        time.sleep(1)
    raise AssertionError(f"{dag_id} run {run_id} did not finish in {timeout}s")
