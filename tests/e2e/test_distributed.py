"""Distributed mode (``OPENMWAA_EXECUTOR=celery``): CeleryExecutor, Celery workers, several
schedulers, PostgreSQL and Redis that openmwaa starts itself.

One server and two environments (Airflow 3 and Airflow 2, created at once) serve every test
here: other tests of distributed mode belong in this module and use the ``distributed``
fixture (read-mostly: an update or a scale test leaves the environment AVAILABLE again). The
slow tests (tasks on workers, autoscaling with kill -9 and WorkerReplacementStrategy, remote
workers) run on both versions at once, a thread each (``on_both_versions``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from openmwaa.runtime import isolation
from openmwaa.runtime.isolation import EnvironmentUser
from openmwaa.supervisor.pidfiles import read_pidfiles
from tests.e2e.conftest import (
    AIRFLOW2,
    AIRFLOW3,
    OpenMwaaServer,
    free_port,
    invoke,
    new_data_dir,
    request_environment,
    runtime_cache,
    start_server,
    stop_server,
    trigger_and_wait,
    wait_for_status,
)

pytestmark = pytest.mark.e2e

PROBE_DAG = "dprobe"
#: Writes where its task ran into the environment's home (the task's HOME), one file per run.
PROBE_DAG_SOURCE = """
import json, os
from datetime import datetime
from airflow import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def where(**context):
    chain, pid = [], os.getpid()
    while pid > 1 and len(chain) < 12:
        try:
            chain.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()[:300])
            pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    found = {"component": os.environ.get("MWAA_AIRFLOW_COMPONENT"), "processes": chain}
    path = os.path.join(os.environ["HOME"], "probe-" + context["run_id"] + ".json")
    with open(path, "w") as handle:
        json.dump(found, handle)


with DAG("dprobe", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    PythonOperator(task_id="w", python_callable=where)
"""


#: The worker tests' DAGs: ``dfan`` queues more tasks than one worker runs at once (12 tasks at 5
#: a worker), ``dlong`` runs one 10 s task, ``dstop`` one whose first try runs for 10 minutes
#: (an update stops it long before; the retry takes a second); a task whose worker dies is
#: retried once.
WORKER_DAGS = {
    dag_id: f"""
import time
from datetime import datetime, timedelta
from airflow import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator



def nap(**context):
    time.sleep({seconds})


with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule=None, catchup=False,
         default_args={{"retries": 1, "retry_delay": timedelta(seconds=1)}}) as dag:
    for i in range({tasks}):
        PythonOperator(task_id=f"t{{i}}", python_callable=nap)
"""
    for dag_id, tasks, seconds in (
        ("dfan", 12, "8"),
        ("dlong", 1, "10"),
        ("dstop", 1, "600 if context['ti'].try_number == 1 else 1"),
    )
}
#: A task whose worker was killed is failed (and retried) this long after its last heartbeat
#: (Airflow's default is 300 s), looked for every 5 s (default 10 s). Tasks the killed worker had
#: only reserved stay "queued" (their Redis message is redelivered only after the visibility
#: timeout, 6 h): Airflow requeues them after task_queued_timeout (default 600 s, checked every
#: 120 s), shortened here. (The kill test kills the worker when it runs as many tasks as it
#: takes, so usually it has reserved none; this is the fallback should one have been fetched.)
_QUEUED_TIMEOUT = {
    "scheduler.task_queued_timeout": "60",
    "scheduler.task_queued_timeout_check_interval": "15",
}
HEARTBEAT_TIMEOUT = {
    "3": {
        "scheduler.task_instance_heartbeat_timeout": "30",
        "scheduler.task_instance_heartbeat_timeout_detection_interval": "5",
        **_QUEUED_TIMEOUT,
    },
    "2": {
        "scheduler.scheduler_zombie_task_threshold": "30",
        "scheduler.zombie_detection_interval": "5",
        **_QUEUED_TIMEOUT,
    },
}
#: Tasks one mw1.small worker runs at once (Celery's concurrency for the class); with Airflow's
#: worker_prefetch_multiplier 1 and late acks, a worker running this many holds no other task.
WORKER_SLOTS = 5


@dataclass(frozen=True)
class DistributedEnv:
    name: str
    version: str
    home: Path

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


@dataclass(frozen=True)
class Distributed:
    """A distributed-mode server and its two AVAILABLE environments (mw1.small, Schedulers 2,
    MinWorkers 1, MaxWorkers 2), each with the example DAGs and ``dprobe``."""

    server: OpenMwaaServer
    af3: DistributedEnv
    af2: DistributedEnv
    #: The API's HTTPS listener (OPENMWAA_TLS_PORT): what workers on other machines join through.
    tls_port: int

    def env(self, major: int) -> DistributedEnv:
        return self.af3 if major == 3 else self.af2


@pytest.fixture(scope="module")
def distributed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distributed]:
    data = new_data_dir(tmp_path_factory, "distributed")
    tls_port = free_port()
    server = start_server(
        data,
        extra_env={
            "OPENMWAA_EXECUTOR": "celery",
            "OPENMWAA_TLS_PORT": str(tls_port),
            # Short autoscaling windows, so the worker tests see both directions in seconds.
            "OPENMWAA_WORKER_SCALE_UP_WINDOW": "3",
            "OPENMWAA_WORKER_SCALE_DOWN_WINDOW": "10",
            "OPENMWAA_WORKER_GRACEFUL_TIMEOUT": "180",
        },
    )
    try:
        envs = []
        for name, version in (("dist-af3", AIRFLOW3), ("dist-af2", AIRFLOW2)):
            bucket = server.make_bucket(f"bucket-{name}")
            (bucket / "dags" / f"{PROBE_DAG}.py").write_text(PROBE_DAG_SOURCE)
            (bucket / "dags" / f"{REMOTE_DAG}.py").write_text(REMOTE_DAG_SOURCE)
            for dag_id, source in WORKER_DAGS.items():
                (bucket / "dags" / f"{dag_id}.py").write_text(source)
            request_environment(
                server,
                name,
                version,
                bucket.name,
                EnvironmentClass="mw1.small",
                Schedulers=2,
                MinWorkers=1,
                MaxWorkers=2,
                AirflowConfigurationOptions=HEARTBEAT_TIMEOUT[version.split(".")[0]],
            )
            home = data / "environments" / "123456789012" / "us-east-1" / name
            envs.append(DistributedEnv(name, version, home))
        for env in envs:  # both were created at once; now wait for both
            got = wait_for_status(server.client(), env.name, {"AVAILABLE", "CREATE_FAILED"})
            assert got["Status"] == "AVAILABLE", f"{env.name}: {got.get('LastUpdate')}\n{server.log_tail()}"
        yield Distributed(server, envs[0], envs[1], tls_port)
    finally:
        stop_server(server)


@pytest.fixture(params=[3, 2], ids=["airflow3", "airflow2"])
def distributed_env(request: pytest.FixtureRequest, distributed: Distributed) -> DistributedEnv:
    return distributed.env(int(request.param))


def queue_of(distributed: Distributed, env: DistributedEnv) -> str:
    arn = distributed.server.client().get_environment(Name=env.name)["Environment"]["CeleryExecutorQueue"]
    return str(arn).rsplit(":", 1)[1]


def on_both_versions(distributed: Distributed, steps: Callable[[DistributedEnv], None]) -> None:
    """Run ``steps`` for the Airflow 3 and the Airflow 2 environment at once, a thread each (the
    wall time is the slower one's, not the sum); every version's failure is reported, not only
    the first, with the server's log."""
    failures: dict[str, BaseException] = {}

    def run(env: DistributedEnv) -> None:
        try:
            steps(env)
        except BaseException as exc:  # re-raised in the test's thread, below
            failures[env.name] = exc

    threads = [
        threading.Thread(target=run, args=(env,), name=env.name) for env in (distributed.af3, distributed.af2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        told = "\n".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in failures.items())
        raise AssertionError(f"{told}\n{distributed.server.log_tail()}") from next(iter(failures.values()))


def test_get_environment_shows_the_celery_queue(distributed: Distributed) -> None:
    mwaa = distributed.server.client()
    arns = [
        mwaa.get_environment(Name=e.name)["Environment"]["CeleryExecutorQueue"]
        for e in (distributed.af3, distributed.af2)
    ]
    shape = re.compile(r"^arn:aws:sqs:us-east-1:123456789012:airflow-celery-[0-9a-f-]{36}$")
    assert all(shape.match(arn) for arn in arns), arns
    assert arns[0] != arns[1], "each environment has a queue of its own"
    assert mwaa.get_environment(Name=distributed.af3.name)["Environment"]["CeleryExecutorQueue"] == arns[0]


def test_tasks_run_on_celery_workers(distributed: Distributed) -> None:
    """On Airflow 3 and Airflow 2 at once."""
    on_both_versions(distributed, lambda env: check_tasks_run_on_celery_workers(distributed, env))


def check_tasks_run_on_celery_workers(distributed: Distributed, env: DistributedEnv) -> None:
    server = distributed.server
    run = trigger_and_wait(server, env.name, env.major, PROBE_DAG, timeout=300)
    assert run["state"] == "success", run
    found = json.loads((env.home / f"probe-{run['dag_run_id']}.json").read_text())
    queue = queue_of(distributed, env)
    # MWAA_AIRFLOW_COMPONENT as MWAA sets it on a worker, and the task's process descends from
    # the environment's Celery worker (Celery titles its processes with the node name), not
    # from a scheduler.
    assert found["component"] == "worker", found
    assert any(f"worker@{queue}" in p for p in found["processes"]), found
    assert not any("airflow scheduler" in p for p in found["processes"]), found
    # The task went through the environment's own Celery queue, the one GetEnvironment names.
    path = f"/dags/{PROBE_DAG}/dagRuns/{run['dag_run_id']}/taskInstances/w"
    instance = invoke(server, env.name, path)["RestApiResponse"]
    assert instance["queue"] == queue, instance


def scheduler_processes(home: Path) -> list[int]:
    """Live scheduler processes of the environment in ``home``, from openmwaa's pid files (Airflow 2
    retitles its scheduler, so command lines do not tell)."""
    alive = []
    for record in read_pidfiles(home / "run"):
        if record.component.split("-")[0] == "scheduler" and Path(f"/proc/{record.pid}").exists():
            alive.append(record.pid)
    return alive


def processes_in(directory: Path) -> list[int]:
    """Processes working in ``directory`` or below (Redis retitles itself: its command line does
    not name its files)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd.is_relative_to(directory):
                found.append(int(entry.name))
    return found


def test_schedulers_run_as_many_scheduler_processes(
    distributed: Distributed, distributed_env: DistributedEnv
) -> None:
    env = distributed_env
    assert len(scheduler_processes(env.home)) == 2
    if env.major == 3:
        # Both take part in scheduling (Airflow's HA on PostgreSQL): two live scheduler jobs.
        deadline = time.monotonic() + 120
        alive: Any = None
        while time.monotonic() < deadline:
            jobs = invoke(
                distributed.server,
                env.name,
                "/jobs",
                QueryParameters={"job_type": "SchedulerJob", "is_alive": True},
            )["RestApiResponse"]
            alive = {j["hostname"] + str(j["id"]) for j in jobs["jobs"]}
            if jobs["total_entries"] >= 2:
                break
            time.sleep(2)
        assert len(alive) >= 2, alive


def test_backing_services_run_loopback_only_as_their_own_user(distributed: Distributed) -> None:
    services = distributed.server.data_dir / "services"
    server_pids = processes_in(services)
    cmdlines = [Path(f"/proc/{p}/cmdline").read_bytes() for p in server_pids]
    assert any(b"postgres" in c for c in cmdlines), cmdlines
    assert any(b"redis-server" in c for c in cmdlines), cmdlines
    for pid, cmdline in zip(server_pids, cmdlines, strict=True):
        # No password on any command line (Redis reads it from its 0600 configuration file).
        for secret_file in ("postgresql.password", "redis.password"):
            assert (services / secret_file).read_text().strip().encode() not in cmdline
        if os.geteuid() == 0:
            assert Path(f"/proc/{pid}").stat().st_uid != 0, "PostgreSQL and Redis do not run as root"
    for secret_file in ("postgresql.password", "redis.password"):
        assert (services / secret_file).stat().st_mode & 0o077 == 0
    # Both listen on 127.0.0.1 only.
    for port_file in ("postgresql.port", "redis.port"):
        port = int((services / port_file).read_text())
        assert listening_addresses(port) == {"127.0.0.1"}, port_file


def listening_addresses(port: int) -> set[str]:
    """The IPv4 and IPv6 addresses a TCP socket listens on at ``port`` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add("127.0.0.1" if address == "0100007F" else address)
    return found


# Workers: autoscaling, kill -9, WorkerReplacementStrategy ----------------------------------------


def trigger(server: OpenMwaaServer, env: DistributedEnv, dag_id: str) -> str:
    """Unpause and trigger ``dag_id``; the run id."""
    mwaa = server.client()
    body: dict[str, Any] = {"dag_run_id": f"e2e-{uuid.uuid4().hex[:12]}"}
    if env.major == 3:
        body["logical_date"] = None
    deadline = time.monotonic() + 120
    while True:
        try:
            invoke(server, env.name, f"/dags/{dag_id}", "PATCH", Body={"is_paused": False})
            invoke(server, env.name, f"/dags/{dag_id}/dagRuns", "POST", Body=body)
            return str(body["dag_run_id"])
        except (mwaa.exceptions.RestApiClientException, mwaa.exceptions.RestApiServerException) as exc:
            if exc.response.get("RestApiStatusCode") == 409:
                return str(body["dag_run_id"])
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def task_instances(server: OpenMwaaServer, env: DistributedEnv, dag_id: str, run_id: str) -> list[Any]:
    try:
        found = invoke(server, env.name, f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    except server.client().exceptions.RestApiServerException:
        return []  # Airflow busy for a moment
    return list(found["RestApiResponse"]["task_instances"])


def wait_for(what: str, check: Any, timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def worker_pids(env: DistributedEnv) -> dict[str, int]:
    """Live Celery workers of the environment, from openmwaa's pid files: name -> pid."""
    return {
        r.component: r.pid
        for r in read_pidfiles(env.home / "run")
        if re.fullmatch(r"worker(-\d+)?", r.component) and Path(f"/proc/{r.pid}").exists()
    }


def run_state(server: OpenMwaaServer, env: DistributedEnv, dag_id: str, run_id: str) -> str | None:
    try:
        run = invoke(server, env.name, f"/dags/{dag_id}/dagRuns/{run_id}")["RestApiResponse"]
    except server.client().exceptions.RestApiServerException:
        return None
    state = run["state"]
    return str(state) if state in ("success", "failed") else None


def autoscale_and_kill(server: OpenMwaaServer, env: DistributedEnv, timings: dict[str, float]) -> None:
    """12 tasks at 5 a worker: the one worker is killed mid-task (its tasks are retried, a new one
    starts, the environment stays AVAILABLE) and a second worker starts; idle again: back to one."""
    mwaa = server.client()
    assert len(worker_pids(env)) == 1
    started = time.monotonic()
    run_id = trigger(server, env, "dfan")

    def running() -> int:
        return sum(t["state"] == "running" for t in task_instances(server, env, "dfan", run_id))

    # Killed once it runs as many tasks as it takes (or 10 s after the first ran, whatever it runs
    # then, one at least: on a busy machine tasks start slowly): then it holds no task it has
    # not started, which Airflow would only requeue after task_queued_timeout; the ones it runs
    # are failed after the heartbeat timeout and retried.
    wait_for(f"{env.name}: tasks running", running, 120, 0.5)
    enough = time.monotonic() + 10
    count = wait_for(
        f"{env.name}: tasks running at the kill",
        lambda: (n := running()) >= (WORKER_SLOTS if time.monotonic() < enough else 1) and n,
        120,
        0.5,
    )
    timings["running at the kill"] = count
    killed = worker_pids(env)["worker"]  # the only worker so far: it runs those tasks
    os.kill(killed, signal.SIGKILL)  # an out-of-memory kill, say: no warm shutdown, no clean-up
    wait_for(
        f"{env.name}: a new worker in place of the killed one",
        lambda: worker_pids(env).get("worker") not in (None, killed),
        60,
        0.5,
    )
    wait_for(f"{env.name}: a second worker", lambda: len(worker_pids(env)) == 2, 90)
    timings["scale up"] = time.monotonic() - started
    state = None
    deadline = time.monotonic() + 300
    while state is None:
        assert time.monotonic() < deadline, f"{env.name}: dfan did not finish"
        status = mwaa.get_environment(Name=env.name)["Environment"]["Status"]
        assert status == "AVAILABLE", f"{env.name} is {status} after a worker was killed"
        state = run_state(server, env, "dfan", run_id)
        time.sleep(2)
    instances = task_instances(server, env, "dfan", run_id)
    assert state == "success", [(t["task_id"], t["state"], t["try_number"]) for t in instances]
    assert all(t["state"] == "success" for t in instances), instances
    assert any(t["try_number"] == 2 for t in instances), "the killed worker's tasks were retried"
    idle = time.monotonic()
    wait_for(f"{env.name}: back to MinWorkers", lambda: len(worker_pids(env)) == 1, 120)
    timings["scale down"] = time.monotonic() - idle
    log = server.log_path.read_text(errors="replace")
    assert f"/{env.name}: workers 1 -> 2 (" in log
    assert f"/{env.name}: workers 2 -> 1 (" in log


PREFETCH_OPTION = "celery.worker_prefetch_multiplier"


def replace_workers(server: OpenMwaaServer, env: DistributedEnv, strategy: str) -> None:
    """An update that replaces the workers while a task runs: GRACEFUL lets a 10 s one finish (one
    try, ended after the update was asked for), FORCED stops one that would run for 10 minutes
    (it fails and is retried)."""
    mwaa = server.client()
    before = worker_pids(env)
    dag_id = "dlong" if strategy == "GRACEFUL" else "dstop"
    run_id = trigger(server, env, dag_id)
    wait_for(
        f"{env.name}: {dag_id} running",
        lambda: any(t["state"] == "running" for t in task_instances(server, env, dag_id, run_id)),
        120,
    )
    config = mwaa.get_environment(Name=env.name)["Environment"]["AirflowConfigurationOptions"]
    # A worker-only option that each update changes (1 is Airflow's default; a second update
    # makes it 2, a third 1 again).
    prefetch = "2" if config.get(PREFETCH_OPTION) == "1" else "1"
    mwaa.update_environment(
        Name=env.name,
        AirflowConfigurationOptions={**config, PREFETCH_OPTION: prefetch},
        WorkerReplacementStrategy=strategy,
    )
    got = wait_for_status(mwaa, env.name, {"AVAILABLE", "UPDATE_FAILED"}, timeout=300)
    assert got["Status"] == "AVAILABLE", got.get("LastUpdate")
    assert got["LastUpdate"]["WorkerReplacementStrategy"] == strategy
    assert got["LastUpdate"]["Status"] == "SUCCESS"
    assert set(worker_pids(env).values()).isdisjoint(before.values()), "the workers were replaced"
    state = wait_for(f"{env.name}: {dag_id} done", lambda: run_state(server, env, dag_id, run_id), 240, 2)
    (instance,) = task_instances(server, env, dag_id, run_id)
    assert state == "success", instance
    if strategy == "GRACEFUL":
        assert instance["try_number"] == 1, "the running task finished before its worker went"
        # ... and it did run into the update (it was not done before the replacement began).
        ended = datetime.fromisoformat(str(instance["end_date"]).replace("Z", "+00:00"))
        assert ended > got["LastUpdate"]["CreatedAt"], (instance, got["LastUpdate"])
    else:
        assert instance["try_number"] == 2, "the running task was stopped, then retried"
        # ... because its worker's stop ended it and Airflow heard so, not because the scheduler
        # found its heartbeat gone (which Airflow records as a "heartbeat timeout" event).
        timeouts = invoke(
            server, env.name, "/eventLogs", QueryParameters={"dag_id": dag_id, "event": "heartbeat timeout"}
        )["RestApiResponse"]["event_logs"]
        assert not [e for e in timeouts if e.get("run_id") == run_id], timeouts


#: The updates each version's worker test makes, one after the other: both strategies on both
#: versions, in opposite orders.
REPLACEMENTS = {3: ("GRACEFUL", "FORCED"), 2: ("FORCED", "GRACEFUL")}


def test_workers_autoscale_survive_a_kill_and_are_replaced(distributed: Distributed) -> None:
    """On Airflow 3 and Airflow 2 at once: autoscaling up and down with a worker killed mid-task,
    then two updates that replace the workers, GRACEFUL and FORCED (see ``REPLACEMENTS``)."""
    timings: dict[str, dict[str, float]] = {}

    def steps(env: DistributedEnv) -> None:
        mine: dict[str, float] = {}
        timings[env.name] = mine
        started = time.monotonic()
        autoscale_and_kill(distributed.server, env, mine)
        for strategy in REPLACEMENTS[env.major]:
            replaced = time.monotonic()
            replace_workers(distributed.server, env, strategy)
            mine[strategy] = time.monotonic() - replaced
        mine["total"] = time.monotonic() - started

    on_both_versions(distributed, steps)
    print(f"\nworker scaling (s): {timings}")


def test_a_broker_that_stops_answering_makes_the_environments_unavailable_until_it_is_back(
    distributed: Distributed,
) -> None:
    """Last in the module: the environments go UNAVAILABLE and come back AVAILABLE."""
    mwaa = distributed.server.client()
    services = distributed.server.data_dir / "services"
    (redis,) = processes_in(services / "redis")
    os.kill(redis, signal.SIGSTOP)  # up, but answering nothing
    try:
        for env in (distributed.af3, distributed.af2):
            got = wait_for_status(mwaa, env.name, {"UNAVAILABLE"}, timeout=120)
            error = got["LastUpdate"]["Error"]
            assert error["ErrorCode"] == "DATABASE_OR_BROKER_UNAVAILABLE", error
            assert "Celery broker is unavailable: redis does not answer" in error["ErrorMessage"], error
    finally:
        os.kill(redis, signal.SIGCONT)
    for env in (distributed.af3, distributed.af2):
        wait_for_status(mwaa, env.name, {"AVAILABLE"}, timeout=180)


# Workers on other machines ----------------------------------------------------------------

#: Only the remote worker consumes this queue (besides the environment's own), so a task sent to
#: it can only run there.
REMOTE_QUEUE = "remote-e2e"
REMOTE_DAG = "remote_probe"
REMOTE_DAG_SOURCE = f"""
import json, os
from datetime import datetime
from airflow import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator


def where(**context):
    found = {{
        "worker": os.environ.get("OPENMWAA_WORKER"),
        "component": os.environ.get("MWAA_AIRFLOW_COMPONENT"),
        "airflow_home": os.environ.get("AIRFLOW_HOME"),
        "uid": os.getuid(),
    }}
    with open(os.path.join(os.environ["HOME"], "remote-" + context["run_id"] + ".json"), "w") as handle:
        json.dump(found, handle)
    return found


with DAG("{REMOTE_DAG}", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:
    PythonOperator(task_id="where", python_callable=where, queue="{REMOTE_QUEUE}")
"""
REMOTE_WORKER_KEY = ("AKIAREMOTEWORKER0001", "remote-worker-secret-00000000000000000000")
NO_JOIN_KEY = ("AKIAREMOTENOJOIN0001", "remote-nojoin-secret-00000000000000000000")


@pytest.fixture(scope="module")
def worker_identities(distributed: Distributed) -> None:
    """A worker user allowed to join both environments and read their buckets, and one allowed
    everything but the join (``airflow:*``, ``s3:*``)."""
    server, names = distributed.server, [e.name for e in (distributed.af3, distributed.af2)]
    buckets = [f"arn:aws:s3:::bucket-{name}" for name in names]
    policies = {
        "remote-worker": [
            {
                "Effect": "Allow",
                "Action": "openmwaa:JoinWorkerPool",
                "Resource": [f"arn:aws:airflow:us-east-1:123456789012:environment/{name}" for name in names],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion"],
                "Resource": [*buckets, *(bucket + "/*" for bucket in buckets)],
            },
        ],
        "no-join": [{"Effect": "Allow", "Action": ["airflow:*", "s3:*"], "Resource": "*"}],
    }
    keys = {"remote-worker": REMOTE_WORKER_KEY, "no-join": NO_JOIN_KEY}
    editor = IdentitiesEditor(
        server.data_dir / "iam.yaml", account_id="123456789012", box=SecretBox.open(server.data_dir)
    )
    for user, statements in policies.items():
        editor.add_user(user)
        editor.create_access_key(user, access_key_id=keys[user][0], secret=keys[user][1])
        editor.put_user_policy(user, "worker", {"Version": "2012-10-17", "Statement": statements})
    sts = server.client(
        "sts", aws_access_key_id=REMOTE_WORKER_KEY[0], aws_secret_access_key=REMOTE_WORKER_KEY[1]
    )
    deadline = time.monotonic() + 30
    while True:  # until the server has reloaded iam.yaml
        try:
            sts.get_caller_identity()
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@dataclass
class RemoteWorker:
    env: DistributedEnv
    directory: Path
    process: subprocess.Popen[bytes]
    user: EnvironmentUser | None


def _worker_user(directory: Path) -> EnvironmentUser | None:
    """As root: a system user of its own, which cannot read openmwaa's data directory."""
    if os.geteuid() != 0:
        return None
    user = isolation.ensure_user("e2e/remote-worker/test", directory)
    os.chown(directory, user.uid, user.gid)
    os.chmod(directory, 0o700)
    return user


def _worker_command(distributed: Distributed, env: DistributedEnv, directory: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "openmwaa",
        "worker",
        "--environment",
        env.name,
        "--endpoint",
        f"https://127.0.0.1:{distributed.tls_port}",
        "--ca-bundle",
        str(directory / "ca.pem"),
        "--worker-dir",
        str(directory / "worker"),
        *extra,
    ]


def _worker_environ(directory: Path, key: tuple[str, str]) -> dict[str, str]:
    """Nothing of the server's: its own HOME, no OPENMWAA_DATA_DIR, credentials in AWS_* variables.
    The runtime cache is the machine's (shared: installing Airflow again would take minutes)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(directory),
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(directory / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(directory / "no-aws-credentials"),
        "OPENMWAA_RUNTIME_DIR": str(runtime_cache()),
        # Where this test process found openmwaa, if not in its virtual environment.
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
    }


@pytest.fixture
def remote_workers(
    tmp_path_factory: pytest.TempPathFactory, distributed: Distributed, worker_identities: None
) -> Iterator[dict[int, RemoteWorker]]:
    """``openmwaa worker`` for each environment (major version -> worker), started at once, each
    a second process with a directory (and, as root, a user) of its own; it is given the CA
    certificate, as a user would be. Only for the test that asks for them: they consume their
    environments' queues, which other tests expect the environments' own workers to serve."""
    server = distributed.server
    workers: dict[int, RemoteWorker] = {}
    logs = []
    try:
        for env in (distributed.af3, distributed.af2):
            directory = new_data_dir(tmp_path_factory, f"remote-worker-af{env.major}")
            shutil.copy(server.data_dir / "tls" / "ca.pem", directory / "ca.pem")
            user = _worker_user(directory)
            if user is not None:
                for path in directory.iterdir():
                    os.chown(path, user.uid, user.gid)
            logs.append(log := (directory / "worker-cli.log").open("wb"))
            process = subprocess.Popen(
                _worker_command(distributed, env, directory, "--name", "remote-e2e", "--queue", REMOTE_QUEUE),
                env=_worker_environ(directory, REMOTE_WORKER_KEY),
                cwd=directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **isolation.popen_args(user),
            )
            workers[env.major] = RemoteWorker(env, directory, process, user)
        yield workers
    finally:
        for worker in workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers.values():
            try:
                worker.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
        for log in logs:
            log.close()


def test_remote_workers_run_a_task(distributed: Distributed, remote_workers: dict[int, RemoteWorker]) -> None:
    """On Airflow 3 and Airflow 2 at once: a task sent to a queue only the remote worker consumes
    runs there, in its directory, as its user."""
    on_both_versions(distributed, lambda env: check_remote_worker(distributed, remote_workers[env.major]))


def check_remote_worker(distributed: Distributed, remote_worker: RemoteWorker) -> None:
    server, env = distributed.server, remote_worker.env
    run = trigger_and_wait(server, env.name, env.major, REMOTE_DAG, timeout=300)
    cli_log = (remote_worker.directory / "worker-cli.log").read_text(errors="replace")
    assert run["state"] == "success", f"{run}\n{cli_log[-3000:]}"
    home = remote_worker.directory / "worker" / env.name
    found = json.loads((home / f"remote-{run['dag_run_id']}.json").read_text())
    # The task ran in the remote worker's directory, as its user, with MWAA's worker marker.
    assert found["worker"] == "remote-e2e" and found["component"] == "worker", found
    assert found["airflow_home"] == str(home.resolve()), found
    if remote_worker.user is not None:
        assert found["uid"] == remote_worker.user.uid, found
    path = f"/dags/{REMOTE_DAG}/dagRuns/{run['dag_run_id']}/taskInstances/where"
    assert invoke(server, env.name, path)["RestApiResponse"]["queue"] == REMOTE_QUEUE
    # The worker's user cannot read anything of openmwaa's: its master key, the environment's home.
    if remote_worker.user is not None:
        for private in (server.data_dir / "master.key", env.home / "airflow.cfg", env.home):
            denied = subprocess.run(
                ["ls" if private.is_dir() else "cat", str(private)],
                capture_output=True,
                check=False,
                **isolation.popen_args(remote_worker.user),
            )
            assert denied.returncode != 0, private
    # The join is in the audit trail (written in batches), and on Airflow 3 the task's execution
    # API calls (an Airflow 2 task talks to the metadata database instead).
    arn = f"arn:aws:airflow:us-east-1:123456789012:environment/{env.name}"
    deadline = time.monotonic() + 30
    while True:
        entries = audit_entries(server)
        joined = any(
            e["action"] == "openmwaa:JoinWorkerPool"
            and e["decision"] == "Allow"
            and e["resource"] == arn
            and (e["principal_arn"] or "").endswith("user/remote-worker")
            for e in entries
        )
        executed = env.major < 3 or any(
            e["action"] == "openmwaa:ExecutionApi" and e["status"] == 200 for e in entries
        )
        if (joined and executed) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert joined and executed, (joined, executed)


def audit_entries(server: OpenMwaaServer) -> list[dict[str, Any]]:
    """The server's audit trail, as ``openmwaa audit --json`` prints it."""
    printed = subprocess.run(
        [sys.executable, "-m", "openmwaa", "audit", "--data-dir", str(server.data_dir), "--json"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [json.loads(line) for line in printed.splitlines() if line.strip()]


def test_a_user_without_the_action_cannot_join(
    tmp_path_factory: pytest.TempPathFactory, distributed: Distributed, worker_identities: None
) -> None:
    server = distributed.server
    directory = new_data_dir(tmp_path_factory, "denied-worker")
    shutil.copy(server.data_dir / "tls" / "ca.pem", directory / "ca.pem")
    done = subprocess.run(
        _worker_command(distributed, distributed.af3, directory),
        env=_worker_environ(directory, NO_JOIN_KEY),
        cwd=directory,
        capture_output=True,
        timeout=120,
        check=False,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 3, stderr
    assert "AccessDeniedException" in stderr and "openmwaa:JoinWorkerPool" in stderr, stderr
    assert not (directory / "worker").exists()  # nothing was installed or fetched
